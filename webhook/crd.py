"""The ServingPlan CustomResourceDefinition, generated from the pydantic plan model.

Kubernetes wants a *structural* OpenAPI v3.0 schema: every node typed, no `$ref`/`$defs`,
`nullable: true` instead of a `null` type, `exclusiveMinimum` as a boolean beside
`minimum`, no `const`, and no `additionalProperties: false` (the API server prunes or,
with kubectl's strict field validation, rejects unknown fields itself). Defaults are
left out so stored objects hold what the user wrote; gpuadmit applies its own.

    python -m webhook.crd > samples/deploy/01-crd.yaml    # tests fail when this file is stale
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from policy.plan import API_VERSION, ServingPlan

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "servingplans"
#: Keys of a JSON Schema node that a structural CRD schema keeps as they are.
_KEPT = {
    "type",
    "description",
    "enum",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "items",
    "properties",
    "required",
}
#: Keys of the plan that belong to the object, not its spec.
_OBJECT_KEYS = {"apiVersion", "kind", "metadata"}


def structural(node: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """One JSON Schema node as a structural OpenAPI v3.0 node."""
    if not isinstance(node, dict):
        raise TypeError(f"schema node must be a mapping, got {node!r}")
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return structural(merged, defs)
    nullable = False
    branches = node.get("anyOf") or node.get("oneOf")
    if branches:
        concrete = [b for b in branches if b.get("type") != "null"]
        nullable = len(concrete) < len(branches)
        if len(concrete) != 1:
            raise ValueError(f"cannot express a union of {len(concrete)} types structurally: {node}")
        outer = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
        result = structural({**concrete[0], **{k: v for k, v in outer.items() if k == "description"}}, defs)
        if nullable:
            result["nullable"] = True
        return result
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "const":
            out["enum"] = [value]
            out.setdefault("type", _type_of(value))
        elif key == "exclusiveMinimum":
            out["minimum"] = value
            out["exclusiveMinimum"] = True
        elif key == "exclusiveMaximum":
            out["maximum"] = value
            out["exclusiveMaximum"] = True
        elif key == "properties":
            out["properties"] = {name: structural(child, defs) for name, child in value.items()}
        elif key == "items":
            out["items"] = structural(value, defs)
        elif key in _KEPT:
            out[key] = value
    if node.get("additionalProperties") is True or (node.get("type") == "object" and "properties" not in node):
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "type" not in out and "x-kubernetes-preserve-unknown-fields" not in out:
        raise ValueError(f"schema node has no type: {node}")
    return out


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def spec_schema() -> dict[str, Any]:
    """The OpenAPI schema of `spec`: the plan's fields other than apiVersion/kind/metadata."""
    schema = ServingPlan.model_json_schema()
    defs = schema.get("$defs", {})
    properties = {k: v for k, v in schema["properties"].items() if k not in _OBJECT_KEYS}
    return structural({"type": "object", "description": schema.get("description", ""), "properties": properties}, defs)


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}", "labels": {"app.kubernetes.io/name": "gpuadmit"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": "ServingPlan",
                "listKind": "ServingPlanList",
                "plural": PLURAL,
                "singular": "servingplan",
                "shortNames": ["splan"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "GPUs, the models placed on them, and accepted exceptions; judged by gpuadmit.",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                            "required": ["spec"],
                        }
                    },
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }


HEADER = "# Generated by `python -m webhook.crd` from the pydantic plan model; do not edit.\n"


def render() -> str:
    """The CRD as the YAML file committed in samples/deploy/."""
    return HEADER + yaml.safe_dump(crd(), sort_keys=False, width=120, allow_unicode=True)


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

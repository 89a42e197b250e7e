"""samples/deploy/ validates against Kubernetes' own schemas, and the CRD matches the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes_validate import utils as kubernetes_validate
from webhook_support import ROOT, sample_plan, serving_plan

from webhook import crd

DEPLOY = ROOT / "samples" / "deploy"
KUBERNETES_VERSION = "1.30"
CERT_MANAGER = yaml.safe_load((Path(__file__).with_name("schemas") / "cert-manager.yaml").read_text(encoding="utf-8"))
#: Not Kubernetes API objects: kustomize's own file.
NOT_OBJECTS = {"kustomization.yaml"}


def documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name in NOT_OBJECTS:
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                docs.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return docs


DOCS = documents()


@pytest.mark.parametrize(("where", "doc"), DOCS, ids=[w for w, _ in DOCS])
def test_manifest_validates_against_its_schema(where: str, doc: dict[str, Any]) -> None:
    if doc["apiVersion"].startswith("cert-manager.io/"):
        jsonschema.validate(doc, CERT_MANAGER[doc["kind"]])
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_deployment_is_highly_available_and_locked_down() -> None:
    (deployment,) = [d for _, d in DOCS if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert deployment["spec"]["replicas"] >= 2
    assert spec["affinity"]["podAntiAffinity"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"readinessProbe", "livenessProbe", "resources"} <= set(container)


def test_every_webhook_is_v1_dry_run_safe_fail_closed_and_skips_system_namespaces() -> None:
    (config,) = [d for _, d in DOCS if d["kind"] == "ValidatingWebhookConfiguration"]
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "gpuadmit-system/gpuadmit-serving"
    for hook in config["webhooks"]:
        assert hook["admissionReviewVersions"] == ["v1"]
        # Reserving an admitted GPU workload in its pool's Lease is a side effect, skipped on dry runs.
        assert hook["sideEffects"] == ("None" if hook["name"].split(".")[0] in ("servingplans", "configmaps") else "NoneOnDryRun")
        assert hook["failurePolicy"] == "Fail"
        assert hook["timeoutSeconds"] == 5
        expressions = {e["key"]: e for e in hook["namespaceSelector"]["matchExpressions"]}
        names = expressions["kubernetes.io/metadata.name"]
        assert names["operator"] == "NotIn"
        assert {"kube-system", "gpuadmit-system"} <= set(names["values"])
        opt_out = expressions["gpuadmit.dev/admission"]
        assert (opt_out["operator"], opt_out["values"]) == ("NotIn", ["disabled"])
    assert any(hook.get("matchConditions") for hook in config["webhooks"])


def test_every_kind_the_readers_understand_and_the_scale_subresources_are_registered() -> None:
    from policy.readers.kubernetes import KSERVE_KINDS, WORKLOAD_KINDS

    (config,) = [d for _, d in DOCS if d["kind"] == "ValidatingWebhookConfiguration"]
    resources = {r for hook in config["webhooks"] for rule in hook["rules"] for r in rule["resources"]}
    plural = {kind.lower() + "s" for kind in WORKLOAD_KINDS | KSERVE_KINDS}
    assert plural | {"servingplans", "configmaps"} <= resources, plural - resources
    assert {"deployments/scale", "statefulsets/scale"} <= resources
    scale = next(h for h in config["webhooks"] if any("deployments/scale" in r["resources"] for r in h["rules"]))
    assert {op for rule in scale["rules"] for op in rule["operations"]} == {"UPDATE"}


def test_the_webhook_pods_are_critical_and_an_unhealthy_one_never_blocks_a_drain() -> None:
    (deployment,) = [d for _, d in DOCS if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["priorityClassName"] == "system-cluster-critical"
    (budget,) = [d for _, d in DOCS if d["kind"] == "PodDisruptionBudget"]
    assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_committed_crd_is_generated_from_the_plan_model() -> None:
    committed = (DEPLOY / "01-crd.yaml").read_text(encoding="utf-8")
    assert committed == crd.render(), (
        "samples/deploy/01-crd.yaml is stale: run `python -m webhook.crd > samples/deploy/01-crd.yaml`"
    )


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)] if isinstance(node, dict) else []
    if isinstance(node, dict):
        for name, child in node.get("properties", {}).items():
            found += _walk(child, f"{path}.{name}")
        if "items" in node:
            found += _walk(node["items"], f"{path}[]")
    return found


def test_crd_schema_is_structural() -> None:
    schema = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        for banned in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "const", "default", "additionalProperties"):
            assert banned not in node, f"{path} has {banned}"


def _as_json_schema(node: Any) -> Any:
    """OpenAPI's `nullable` and boolean `exclusiveMinimum` in JSON Schema terms, to validate samples."""
    if not isinstance(node, dict):
        return node
    out = {
        k: _as_json_schema(v) if k in ("items",) else v
        for k, v in node.items()
        if k not in ("nullable", "x-kubernetes-preserve-unknown-fields")
    }
    if "properties" in node:
        out["properties"] = {k: _as_json_schema(v) for k, v in node["properties"].items()}
    if node.get("exclusiveMinimum") is True:
        out["exclusiveMinimum"] = out.pop("minimum")
    if node.get("nullable"):
        out["type"] = [node["type"], "null"]
    return out


@pytest.mark.parametrize("sample", ["seed-demo-safe.yaml", "mig-a100.yaml", "fleet-mps.yaml"])
def test_sample_plans_fit_the_crd_schema(sample: str) -> None:
    schema = _as_json_schema(crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    jsonschema.validate(serving_plan(sample_plan(sample)), schema)


def test_crd_schema_rejects_a_negative_memory() -> None:
    schema = _as_json_schema(crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    bad = serving_plan({"gpus": [{"id": "gpu0", "memory_gb": -80}], "models": []})
    with pytest.raises(jsonschema.ValidationError, match="-80"):
        jsonschema.validate(bad, schema)

"""Rule files: their shape, where they are found, and how configuration adjusts them.

A rule is data: one YAML file per rule, named after its id. This module reads and checks
rule files and applies a project's overrides; compiling their expressions is
policy.rulecompile's job.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .closest import did_you_mean
from .errors import RuleError
from .yamlio import load_documents, position, read_text

Scope = Literal["input", "plan", "gpu", "model", "waiver"]
RULE_ID_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
VARIABLE_PATTERN = r"^[a-z_][a-z0-9_]*$"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Variable(_Spec):
    """A named value computed per subject, usable by later variables, validations and messages."""

    name: str = Field(pattern=VARIABLE_PATTERN)
    expression: str = Field(min_length=1)


class Validation(_Spec):
    """A check that is true when the subject passes."""

    expression: str = Field(min_length=1, description="CEL; true means pass.")
    message: str = Field(
        min_length=1,
        description="Shown on failure. `{gpu.committed_gb:.1f}`, `{params.x}` and `{variable}` are filled in.",
    )
    field: str | None = Field(None, description="The plan field the finding points at, when present.")
    severity: Literal["error", "warning", "info"] | None = Field(
        None,
        description=(
            "Severity of this validation's findings when lower than the rule's (a warning-level check "
            "inside an error rule); never raises it, so lowering the rule in the config lowers this too."
        ),
    )


class RuleSpec(_Spec):
    """One rule file."""

    id: str = Field(pattern=RULE_ID_PATTERN, description="Stable id; equals the file name without .yaml.")
    title: str = Field(min_length=1)
    severity: Literal["error", "warning", "info"]
    scope: Scope = Field(description="What a finding is about: each model, each GPU, each waiver, the plan, or the input.")
    description: str = Field(min_length=1)
    remediation: str = Field(min_length=1, description="The fix hint; may use the same placeholders as messages.")
    remediations: dict[Literal["triton", "kubernetes"], str] = Field(
        default_factory=dict,
        description=(
            "The fix hint in the words of the input the subject was read from (a Triton config.pbtxt, a "
            "Kubernetes manifest), where it differs from `remediation`, which speaks of plan fields."
        ),
    )
    params: dict[str, float | int | bool | str | list[str]] = Field(default_factory=dict)
    match: str | None = Field(None, description="CEL precondition: subjects where it is false are not judged.")
    variables: list[Variable] = Field(default_factory=list)
    validations: list[Validation] = Field(default_factory=list)
    enabled: bool = True
    locked: dict[Literal["enabled", "severity"], str] = Field(
        default_factory=dict,
        description=(
            "Overrides a project config may not make, each with the reason it is refused "
            "(`enabled: <why it cannot be disabled>`, `severity: <why its severities stand>`)."
        ),
    )


class RuleOverride(_Spec):
    """A project's adjustment of one rule."""

    enabled: bool | None = None
    severity: Literal["error", "warning", "info"] | None = None
    params: dict[str, float | int | bool | str | list[str]] = Field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def rule_file_schema() -> dict[str, Any]:
    """JSON Schema of a rule file, generated from RuleSpec (shipped for editors too)."""
    schema = RuleSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "gpuadmit rule"
    return schema


def builtin_rules_dir() -> Path:
    """`rules/` inside the installed wheel, or at the repository root in a checkout."""
    packaged = Path(__file__).with_name("builtin_rules")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "rules"


def load_specs(dirs: list[Path], overrides: dict[str, RuleOverride]) -> list[tuple[RuleSpec, str]]:
    """Every rule of `dirs` with its file, ids unique, with the project's overrides applied."""
    specs: dict[str, tuple[RuleSpec, str]] = {}
    for directory in dirs:
        for spec, file in load_rule_dir(directory):
            if spec.id in specs:
                raise RuleError(f"rule id {spec.id!r} is already defined in {specs[spec.id][1]}", file=file, field="id")
            specs[spec.id] = (spec, file)
    for rule_id, override in overrides.items():
        if rule_id not in specs:
            raise RuleError(f"no rule {rule_id!r} to configure" + did_you_mean(rule_id, specs), field=f"rules.{rule_id}")
        spec, file = specs[rule_id]
        unknown = set(override.params) - set(spec.params)
        if unknown:
            name = sorted(unknown)[0]
            raise RuleError(
                f"rule {rule_id!r} has no parameter {name!r}" + did_you_mean(name, spec.params),
                field=f"rules.{rule_id}.params.{name}",
            )
        update: dict[str, Any] = {"params": {**spec.params, **override.params}}
        if override.severity is not None:
            update["severity"] = override.severity
        if override.enabled is not None:
            update["enabled"] = override.enabled
        specs[rule_id] = (spec.model_copy(update=update), file)
    return list(specs.values())


def load_rule_dir(directory: Path) -> list[tuple[RuleSpec, str]]:
    """Every rule in `directory`, with its file. Stray files and mismatched ids are errors."""
    if not directory.is_dir():
        raise RuleError("rules folder not found", file=str(directory))
    loaded: list[tuple[RuleSpec, str]] = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.name.lower() in {"readme.md"}:
            continue
        if path.suffix not in {".yaml", ".yml"} or not path.is_file():
            raise RuleError("not a rule file (rules are <id>.yaml)", file=str(path))
        loaded.append((load_rule_file(path), str(path)))
    return loaded


def load_rule_file(path: Path) -> RuleSpec:
    file = str(path)
    docs = load_documents(read_text(path, what="rule", error=RuleError), file)
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        raise RuleError("a rule file holds exactly one YAML mapping", file=file)
    data = docs[0].data
    _validate_against_schema(data, file)
    spec = RuleSpec.model_validate(data)
    if spec.id != path.stem:
        line, column = position(data, ("id",))
        raise RuleError(
            f"id {spec.id!r} differs from the file name {path.stem!r}", file=file, line=line, column=column, field="id"
        )
    names = [v.name for v in spec.variables]
    reserved = {"params", "plan", spec.scope}
    for n, name in enumerate(names):
        if name in names[:n] or name in reserved:
            line, column = position(data, ("variables", n, "name"))
            raise RuleError(
                f"variable {name!r} is defined twice or shadows a built-in name",
                file=file,
                line=line,
                column=column,
                field=f"variables[{n}].name",
            )
    if spec.scope != "input" and not spec.validations:
        raise RuleError("a rule needs at least one validation", file=file, field="validations")
    return spec


@functools.lru_cache(maxsize=1)
def _schema_validator() -> Any:
    import jsonschema  # imported here: it is only needed when rule files are loaded

    return jsonschema.Draft202012Validator(rule_file_schema())


def _validate_against_schema(data: dict[str, Any], file: str) -> None:
    errors = sorted(
        _schema_validator().iter_errors(json.loads(json.dumps(data, default=str))), key=lambda e: list(e.absolute_path)
    )
    if not errors:
        return
    error = errors[0]
    path = tuple(error.absolute_path)
    line, column = position(data, path)
    field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[") or None
    message = error.message
    if error.validator == "additionalProperties":
        message = f"unknown key ({message})"
    raise RuleError(message, file=file, line=line, column=column, field=field)


def describe_scope(scope: str) -> str:
    return {
        "input": "the input file",
        "plan": "the plan",
        "gpu": "each GPU and MIG slice",
        "model": "each model",
        "waiver": "each waiver",
    }[scope]

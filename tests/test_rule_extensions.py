"""The CEL extensions a user's rule may use (`cel.bind`, math, strings) load, type-check
and judge, with the same verdict on the translated path and on cel-cpp; the environment
that checks a rule at load and the one its program runs in accept the same CEL."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.api import Linter
from policy.errors import RuleError
from policy.rulecompile import CompiledRule, cel_env, check_rule, program_source
from policy.rules import RuleSpec

PLAN = """\
gpus: [{id: gpu0, memory_gb: 80}]
models:
  - {name: Emb, gpu: gpu0, gpu_gb: 1, instances: 4}
  - {name: chat, gpu: gpu0, gpu_gb: 2, instances: 1}
"""

RULE = """\
id: {id}
title: A rule of one's own
severity: warning
scope: model
description: Written by a user.
remediation: "look at {{model.name}}"
params: {{limit: 2}}
variables:
{variables}
validations:
  - expression: {expression}
    message: "{{model.name}}: {{model.instances}} instances"
    field: instances
"""

#: (rule id, variables block, validation): each judges `Emb` (4 instances) and passes `chat`.
RULES = [
    (
        "bound-instances",
        "  - {name: within, expression: 'cel.bind(n, model.instances, n <= params.limit)'}",
        "cel.bind(ok, within, ok && cel.bind(n, model.instances * 2, n <= params.limit + params.limit))",
    ),
    (
        "math-instances",
        "  - {name: most, expression: 'math.greatest(model.instances, 1.0)'}",
        "most <= params.limit && math.least([model.instances, params.limit]) == model.instances",
    ),
    (
        "strings-instances",
        "  - {name: lower, expression: model.name.lowerAscii()}",
        "lower == model.name || model.instances <= params.limit",
    ),
]


def _linter(tmp_path: Path, rule_id: str, variables: str, expression: str) -> Linter:
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    text = RULE.format(id=rule_id, variables=variables, expression=repr(expression))
    (folder / f"{rule_id}.yaml").write_text(text)
    return Linter(rule_dirs=[folder])


def _findings(linter: Linter, plan: Path, rule_id: str) -> list[tuple[str, str | None, str, int | None]]:
    return [(f.severity, f.model, f.message, f.line) for f in linter.lint_paths([plan]).findings if f.rule == rule_id]


@pytest.mark.parametrize(("rule_id", "variables", "expression"), RULES, ids=[r[0] for r in RULES])
def test_a_user_rule_using_an_extension_judges_alike_translated_and_on_cel_cpp(
    tmp_path: Path, rule_id: str, variables: str, expression: str
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    linter = _linter(tmp_path, rule_id, variables, expression)
    rule = linter.rules.by_id[rule_id]
    first = _findings(linter, plan, rule_id)
    assert first == [("warning", "Emb", "Emb: 4 instances", 3)]
    rule.fast = None  # what cel-cpp says, given only the facts the rules read
    assert _findings(linter, plan, rule_id) == first


def test_a_user_rule_using_cel_bind_is_translated(tmp_path: Path) -> None:
    """`cel.bind` is in the translated subset (docs/PERFORMANCE.md): cel-cpp judges such a
    rule only where the translation refuses a plan."""
    linter = _linter(tmp_path, *RULES[0])
    assert linter.rules.by_id[RULES[0][0]].fast is not None
    assert linter.rules.untranslated == []


#: One expression per extension cel-expr-python ships, whether rules may use it or not.
PROBES = {
    "bindings": "cel.bind(n, model.instances, n > 0)",
    "math": "math.greatest(model.instances, 1) > 0",
    "math bits": "math.bitOr(model.instances, 1) > 0",
    "strings": "model.name.lowerAscii().indexOf('a') >= -1",
    "strings split": "model.name.split(',').size() > 0",
    "encoders": "base64.encode(bytes(model.name)) != b''",
    "optional": "optional.of(model.instances).hasValue()",
    "plain": "model.instances > 0",
    "unknown function": "model.name.shout() != ''",
}


def _spec(expression: str) -> RuleSpec:
    return RuleSpec.model_validate(
        {
            "id": "probe",
            "title": "t",
            "severity": "warning",
            "scope": "model",
            "description": "d",
            "remediation": "r",
            "validations": [{"expression": expression, "message": "m"}],
        }
    )


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_the_checker_accepts_exactly_what_the_runtime_runs(probe: str) -> None:
    spec = _spec(PROBES[probe])
    try:
        check_rule(CompiledRule(spec, "probe.yaml"))
        checked = True
    except RuleError:
        checked = False
    _, env = cel_env()
    try:
        env.compile(program_source(spec))
        runs = True
    except Exception:  # noqa: BLE001 - cel raises plain exceptions
        runs = False
    assert checked == runs, f"{probe}: checker {'accepts' if checked else 'refuses'}, runtime {'runs' if runs else 'refuses'}"
    if probe in ("bindings", "math", "strings", "plain"):
        assert checked, f"rules may use {probe} (README, Rules)"

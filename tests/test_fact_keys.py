"""cel-cpp is handed only the facts some rule reads (rulecompile.fact_keys), found on the
rules' syntax trees: a fact a rule reads is never left out (it would reach cel-cpp as its
type's default, a silent wrong answer), whatever strings or variables hide it from a
text search; and the work is done only when cel-cpp judges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, SAMPLES
from policy import ruleeval
from policy.api import Linter
from policy.facts import build_facts
from policy.readers import read_paths
from policy.rulecompile import CompiledRule, fact_keys
from policy.rules import RuleSpec


def _rule(expression: str, variables: tuple[tuple[str, str], ...] = ()) -> CompiledRule:
    spec = RuleSpec.model_validate(
        {
            "id": "probe",
            "title": "t",
            "severity": "warning",
            "scope": "model",
            "description": "d",
            "remediation": "r",
            "params": {"limit": 2},
            "variables": [{"name": n, "expression": e} for n, e in variables],
            "validations": [{"expression": expression, "message": "m"}],
        }
    )
    return CompiledRule(spec, "probe.yaml")


@pytest.mark.parametrize(
    ("expression", "variables", "read"),
    [
        ("model.instances <= params.limit", (), {"instances"}),
        # a string that a text search takes for one running over the facts after it
        ("'''it's''' != model.name && model.instances <= params.limit && model.gpu != 'x'", (), {"name", "instances", "gpu"}),
        ('"""a"b""" != model.name && model.gpu != "x"', (), {"name", "gpu"}),
        ("'model.sla_ms' != model.name", (), {"name"}),
        # a macro's own `model` is not the subject
        ("[1, 2].all(model, model > 0) && model.gpu != ''", (), {"gpu"}),
        ("model.neighbours.exists(n, n != model.name)", (), {"neighbours", "name"}),
        ("has(model.sla_ms) && over", (("over", "model.instances > params.limit"),), {"sla_ms", "instances"}),
        # the subject bound whole to another name: everything
        ("cel.bind(m, model, m.name) != ''", (), None),
    ],
)
def test_the_facts_a_rule_reads(expression: str, variables: tuple[tuple[str, str], ...], read: set[str] | None) -> None:
    keys = fact_keys([_rule(expression, variables)])["models"]
    assert keys == (None if read is None else frozenset({"idx", *read}))


TRIPLE_QUOTED = """\
id: quoted
title: Instances bound
severity: warning
scope: model
description: Many instances.
remediation: "lower instances of {model.name}"
params: {limit: 2}
validations:
  - expression: "'''it's''' != model.name && model.instances <= params.limit && model.gpu != 'x'"
    message: "{model.name}: {model.instances} instances"
    field: instances
"""


def test_cel_cpp_judges_a_rule_whose_string_hides_its_facts_from_a_text_search(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "quoted.yaml").write_text(TRIPLE_QUOTED)
    plan = tmp_path / "plan.yaml"
    plan.write_text("gpus: [{id: gpu0, memory_gb: 80}]\nmodels: [{name: emb, gpu: gpu0, gpu_gb: 1, instances: 4}]\n")
    linter = Linter(rule_dirs=[folder])
    translated = [f.message for f in linter.lint_paths([plan]).findings if f.rule == "quoted"]
    linter.rules.by_id["quoted"].fast = None
    on_cel_cpp = [f.message for f in linter.lint_paths([plan]).findings if f.rule == "quoted"]
    assert translated == on_cel_cpp == ["emb: 4 instances"]


def _rows(rules: list[CompiledRule], activation: Any) -> list[Any]:
    return [ruleeval.result(ruleeval._eval(rule.program, activation), rule) for rule in rules]


def test_builtin_rules_give_cel_cpp_the_same_answer_on_the_facts_they_read_as_on_all() -> None:
    rules = Linter().rules
    keys = rules._fact_keys
    assert keys["models"] is not None and keys["gpus"] is not None  # a projection, not everything
    params = {r.id: r.params for r in rules.rules}
    judged = 0
    fixtures = sorted(p for p in (ROOT / "tests" / "rules").glob("*/*") if p.name != "capacity.yaml")
    for source in read_paths([SAMPLES, *fixtures]).sources:
        facts = build_facts(source.plan)
        for chunk in ruleeval._chunks(facts, params):
            projected = ruleeval.activation(*chunk, keys=keys)
            everything = ruleeval.activation(*chunk)
            assert _rows(rules.active, projected) == _rows(rules.active, everything), source.file
            judged += 1
    assert judged > 40


def test_the_facts_read_are_worked_out_only_when_cel_cpp_judges(monkeypatch: pytest.MonkeyPatch) -> None:
    linter = Linter()
    linter.lint_paths([SAMPLES / "seed-demo.yaml"])
    assert "_fact_keys" not in vars(linter.rules)  # every built-in rule translated: cel-cpp was not asked
    rule = linter.rules.by_id["bulk-capped"]
    monkeypatch.setattr(rule, "fast", None)
    findings = [f.message for f in linter.lint_paths([SAMPLES / "seed-demo.yaml"]).findings if f.rule == "bulk-capped"]
    assert findings and "_fact_keys" in vars(linter.rules)

"""The facts schema is the fact builder's contract, and the rules' types come from it."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, SAMPLES
from policy import factschema
from policy.facts import Facts, build_facts


@functools.lru_cache(maxsize=1)
def _sample_facts() -> list[tuple[str, Facts]]:
    """The facts of every sample, rule fixture and the probe plan, real capacity included
    where a fixture folder has a capacity.yaml."""
    from policy.capacity.providers import open_provider
    from policy.readers import read_paths

    built = [
        (s.file or "?", build_facts(s.plan)) for s in read_paths([SAMPLES, ROOT / "policy" / "data" / "probe-plan.yaml"]).sources
    ]
    for folder in sorted(p for p in (ROOT / "tests" / "rules").iterdir() if p.is_dir()):
        capacity = folder / "capacity.yaml"
        inventory = open_provider(str(capacity)).inventory() if capacity.exists() else None
        fixtures = [p for p in sorted(folder.iterdir()) if p.name != "capacity.yaml"]
        built += [(s.file or "?", build_facts(s.plan, inventory=inventory)) for s in read_paths(fixtures).sources]
    return built


def test_the_fact_builder_makes_exactly_the_facts_of_the_schema() -> None:
    """A fact added to policy/facts.py needs a row in policy/factschema.py (and the reverse)."""
    problems: dict[str, str] = {}
    for file, facts in _sample_facts():
        for scope, items in (("model", facts.models), ("gpu", facts.gpus), ("waiver", facts.waivers), ("plan", [facts.plan])):
            for item in items:
                for problem in factschema.mismatches(scope, item):
                    problems.setdefault(problem, file)
    assert not problems, "\n".join(f"{problem} (in {file})" for problem, file in problems.items())


def test_the_samples_reach_every_scope_and_verified_capacity() -> None:
    facts = [f for _, f in _sample_facts()]
    assert len(facts) > 40
    assert any(f.waivers for f in facts) and any(g["kind"] == "mig-slice" for f in facts for g in f.gpus)
    assert any(g["verified"] for f in facts for g in f.gpus)


def test_mismatches_name_the_fact_and_what_to_do() -> None:
    fact: dict[str, Any] = {
        f.name: {"int": 0, "double": 0.0, "bool": False, "string": "", "list(string)": []}[f.type] for f in factschema.WAIVER
    }
    assert factschema.mismatches("waiver", fact) == []
    fact["days_expired"] = 1.5
    fact["owner"] = "team-a"
    del fact["reason"]
    assert sorted(factschema.mismatches("waiver", fact)) == [
        "waiver.days_expired: built as double, the schema says int",
        "waiver.owner: built but not in the schema (add a row to policy/factschema.py)",
        "waiver.reason: in the schema but not built",
    ]


def test_every_row_is_complete_and_named_once() -> None:
    for scope, facts in factschema.SCHEMA.items():
        names = [f.name for f in facts]
        assert len(names) == len(set(names)), scope
        for fact in facts:
            assert fact.type in factschema.CEL_TYPES and fact.meaning and fact.source, fact
            assert fact.name.isidentifier() and fact.scope == scope, fact


def test_facts_doc_lists_every_fact_with_its_type() -> None:
    text = (ROOT / "docs" / "facts.md").read_text(encoding="utf-8")
    for scope, facts in factschema.SCHEMA.items():
        for fact in facts:
            assert f"| `{scope}.{fact.name}` | `{fact.type}` |" in text


@pytest.mark.parametrize("scope", sorted(factschema.SCHEMA))
def test_the_cel_types_come_from_the_schema(scope: str) -> None:
    from cel_expr_python import cel

    pool = factschema.descriptor_pool()
    env = cel.NewEnv(pool, variables={"s": cel.Type(factschema.message_name(scope))})
    for fact in factschema.SCHEMA[scope]:
        returned = env.compile(f"s.{fact.name}").return_type().name()
        expected = {"int": "INT", "double": "DOUBLE", "bool": "BOOL", "string": "STRING", "list(string)": "LIST<STRING>"}[
            fact.type
        ]
        assert returned == expected, fact


def test_no_rule_needs_a_self_check_plan() -> None:
    assert not (ROOT / "policy" / "data" / "selfcheck-plan.yaml").exists()
    assert not Path(ROOT / "policy" / "engine.py").read_text(encoding="utf-8").count("_pinpoint")

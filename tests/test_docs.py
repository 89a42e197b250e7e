"""Generated documentation stays in step with its sources."""

from __future__ import annotations

from conftest import ROOT
from policy import ruledocs
from policy.rules import builtin_rules_dir, load_rule_dir


def test_rule_docs_are_current() -> None:
    specs = sorted((spec for spec, _ in load_rule_dir(builtin_rules_dir())), key=lambda s: s.id)
    committed = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert committed == ruledocs.render(specs), "docs/rules.md is stale: run `python -m policy.ruledocs > docs/rules.md`"


def test_fact_docs_are_current() -> None:
    from policy import factschema

    committed = (ROOT / "docs" / "facts.md").read_text(encoding="utf-8")
    assert committed == factschema.markdown(), "docs/facts.md is stale: run `python -m policy.factschema > docs/facts.md`"

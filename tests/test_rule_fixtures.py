"""Every rule has passing and failing fixtures under tests/rules/<id>/, judged here.

A fixture named `fail-*` must make its rule fire (and, when it has an `# expect:`
line, with that text in the message); a `pass-*` fixture must not. When the folder
holds `capacity.yaml`, fixtures are judged against that real-capacity inventory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.api import Linter
from policy.engine import RuleSet

FIXTURES = Path(__file__).parent / "rules"


def _fixtures() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*/*") if p.name.startswith(("pass-", "fail-")))


def _expected(path: Path) -> list[str]:
    if path.is_dir():
        return []
    return [
        line.split("# expect:", 1)[1].strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip().startswith("# expect:")
    ]


_LINTERS: dict[Path | None, Linter] = {}


def _linter(folder: Path) -> Linter:
    capacity = folder / "capacity.yaml"
    key = capacity if capacity.exists() else None
    if key not in _LINTERS:
        _LINTERS[key] = Linter(capacity=str(capacity)) if key else Linter()
    return _LINTERS[key]


@pytest.mark.parametrize("fixture", _fixtures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture(fixture: Path) -> None:
    rule_id = fixture.parent.name
    report = _linter(fixture.parent).lint_paths([fixture])
    fired = [f for f in report.findings if f.rule == rule_id and not f.waived]
    if fixture.name.startswith("pass-"):
        assert fired == [], f"{rule_id} fired on a passing fixture: {[f.message for f in fired]}"
        return
    assert fired, f"{rule_id} did not fire; findings: {[(f.rule, f.message) for f in report.findings]}"
    for text in _expected(fixture):
        assert any(text in f.message for f in fired), f"no {rule_id} message contains {text!r}: {[f.message for f in fired]}"


def test_every_rule_has_passing_and_failing_fixtures() -> None:
    rules = {r.id for r in RuleSet.load().rules}
    folders = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert folders - rules == set(), "fixture folders without a rule"
    for rule_id in sorted(rules):
        names = [p.name for p in (FIXTURES / rule_id).iterdir()] if (FIXTURES / rule_id).is_dir() else []
        assert any(n.startswith("pass-") for n in names), f"{rule_id} has no pass-* fixture"
        assert any(n.startswith("fail-") for n in names), f"{rule_id} has no fail-* fixture"

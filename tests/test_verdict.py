"""One semantics for a verdict: the decision every entry point takes from its findings."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from policy.findings import Finding
from policy.report import Report
from policy.verdict import decide, decide_failure

SEED = ROOT / "samples" / "seed-demo.yaml"


def _finding(rule: str, severity: str, waived: bool = False) -> Finding:
    return Finding(rule=rule, severity=severity, message=f"{rule} {severity}", waived=waived)  # type: ignore[arg-type]


ERROR = _finding("memory-fit", "error")
WARNING = _finding("memory-headroom", "warning")
INFO = _finding("memory-declared", "info")
BAD_INPUT = _finding("schema", "error")


@pytest.mark.parametrize(
    ("findings", "fail_on", "exit_code"),
    [
        ([], "error", 0),
        ([INFO, WARNING], "error", 0),
        ([INFO, WARNING], "warning", 1),
        ([INFO], "warning", 0),
        ([ERROR], "error", 1),
        ([ERROR, WARNING], "never", 0),
        ([BAD_INPUT], "never", 2),
        ([BAD_INPUT, ERROR], "error", 2),
        ([_finding("memory-fit", "error", waived=True)], "error", 0),
        ([_finding("schema", "error", waived=True)], "error", 0),
        ([_finding("schema", "warning")], "error", 0),
    ],
)
def test_exit_code_follows_fail_on_and_unusable_input_is_always_2(findings: list[Finding], fail_on: str, exit_code: int) -> None:
    verdict = decide(findings, fail_on=fail_on)  # type: ignore[arg-type]
    assert verdict.exit_code == exit_code
    assert verdict.allowed is (exit_code == 0)


def test_failing_findings_are_the_counting_ones_at_or_above_fail_on() -> None:
    verdict = decide([INFO, WARNING, ERROR, _finding("isolation", "error", waived=True)], fail_on="warning")
    assert verdict.failing == (WARNING, ERROR)
    assert verdict.warnings == ()
    assert decide([INFO, WARNING, ERROR]).warnings == (WARNING,)


def test_bad_input_is_denied_even_when_nothing_else_fails() -> None:
    verdict = decide([BAD_INPUT, WARNING], fail_on="never")
    assert not verdict.allowed and verdict.unusable_input
    assert verdict.failing == (BAD_INPUT,)


def test_audit_allows_and_says_what_it_would_deny() -> None:
    verdict = decide([ERROR, BAD_INPUT], mode="audit")
    assert verdict.allowed and verdict.would_deny
    assert verdict.failing == (ERROR, BAD_INPUT)
    assert decide([WARNING], mode="audit").would_deny is False


def test_failing_open_covers_only_gpuadmits_own_failures() -> None:
    assert decide_failure(fail_open=True).allowed is True
    assert decide_failure(fail_open=False).allowed is False
    # Bad input is a finding: the function that judges findings has no way to fail open.
    with pytest.raises(TypeError):
        decide([BAD_INPUT], fail_open=True)  # type: ignore[call-arg]


def test_report_and_cli_take_the_same_decision(tmp_path: Path) -> None:
    from policy.api import lint

    report = lint(SEED)
    for fail_on in ("error", "warning", "never"):
        decided = decide(report.findings, fail_on=fail_on)  # type: ignore[arg-type]
        assert report.exit_code(fail_on) == decided.exit_code  # type: ignore[arg-type]
        assert report.failed(fail_on) is bool(decided.failing)  # type: ignore[arg-type]
        assert run_cli("lint", "--fail-on", fail_on, str(SEED)).code == decided.exit_code
    assert Report().exit_code() == 0

"""Waivers mean one thing everywhere: the finding is still reported, as waived, with its
reason, and does not fail the run; an expired waiver waives nothing and is itself an error."""

from __future__ import annotations

import json
from pathlib import Path

from policy.writers import render
from writer_helpers import at_root  # noqa: F401  (autouse: run from the repository root)
from writer_helpers import LAST_YEAR, NEXT_YEAR, SEED, report_of, waived_seed


def test_plan_waiver_is_reported_as_waived_in_text_and_json(tmp_path: Path) -> None:
    report = report_of(waived_seed(tmp_path))
    assert report.exit_code() == 0
    text = render(report, "text")
    assert "waived  bulk-capped" in text and "(waived: runs only at night)" in text
    assert text.rstrip().endswith("0 errors, 0 warnings, 0 info, 1 waived in 1 plan")
    [finding] = json.loads(render(report, "json"))["findings"]
    assert (finding["rule"], finding["model"], finding["waived"]) == ("bulk-capped", "embeddings", True)
    assert (finding["waiver_reason"], finding["waiver_source"]) == ("runs only at night", "plan")


def test_config_waiver_is_reported_as_waived_from_the_config() -> None:
    waiver = {"rule": "bulk-capped", "model": "reranker", "reason": "batch window only", "expires": NEXT_YEAR}
    report = report_of(SEED, waivers=[waiver])
    waived = [f for f in report.findings if f.waived]
    assert [(f.rule, f.model, f.waiver_source) for f in waived] == [("bulk-capped", "reranker", "config")]
    assert report.counts() == {"error": 5, "warning": 0, "info": 0, "waived": 1}


def test_expired_plan_waiver_waives_nothing_and_is_an_error(tmp_path: Path) -> None:
    report = report_of(waived_seed(tmp_path, expires=LAST_YEAR))
    found = sorted((f.rule, f.model, f.severity, f.waived) for f in report.findings)
    assert found == [("bulk-capped", "embeddings", "error", False), ("waiver-expired", "embeddings", "error", False)]
    expired = next(f for f in report.findings if f.rule == "waiver-expired")
    assert f"expired on {LAST_YEAR} (365 days ago)" in expired.message
    assert expired.line == 6  # the waiver's `expires` key
    assert report.exit_code() == 1
    sarif = json.loads(render(report, "sarif"))
    assert not any("suppressions" in r for r in sarif["runs"][0]["results"])


def test_expired_config_waiver_waives_nothing_and_is_an_error() -> None:
    waiver = {"rule": "bulk-capped", "model": "reranker", "reason": "batch window only", "expires": LAST_YEAR}
    report = report_of(SEED, waivers=[waiver])
    assert not any(f.waived for f in report.findings)
    assert [(f.rule, f.model) for f in report.findings if f.rule == "waiver-expired"] == [("waiver-expired", "reranker")]

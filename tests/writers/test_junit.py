"""JUnit XML: one suite per plan, one case per rule and subject, failures that match the findings."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from policy.findings import Finding
from policy.report import Report
from policy.writers import render
from writer_helpers import at_root  # noqa: F401  (autouse: run from the repository root)
from writer_helpers import SAFE, SEED, SEED_FINDINGS, report_of, waived_seed


def junit_of(*paths: str | Path) -> ET.Element:
    return ET.fromstring(render(report_of(*paths), "junit"))


def test_seed_demo_has_six_failing_cases_and_passing_cases_for_the_other_rules() -> None:
    report = report_of(SEED)
    root = ET.fromstring(render(report, "junit"))
    [suite] = root.findall("testsuite")
    rules = [rule.id for rule in report.rules if rule.scope != "input"]
    assert suite.get("name") == "seed-demo"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == (str(6 + len(rules) - 3), "6", "0")
    failing = {tuple(case.get("name", "").split(": ")) for case in suite if case.find("failure") is not None}
    assert failing == SEED_FINDINGS
    passing = {case.get("name") for case in suite if case.find("failure") is None}
    assert passing == {f"{rule}: all" for rule in rules} - {
        "bulk-capped: all",
        "latency-critical-priority: all",
        "latency-critical-rate-limit: all",
    }
    case = next(c for c in suite if c.get("name") == "bulk-capped: embeddings")
    assert case.get("file") == SEED and case.get("line") == "5"
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "error"
    assert "fix: cap embeddings" in (failure.text or "")


def test_safe_sample_has_no_failures() -> None:
    root = junit_of(SAFE)
    assert root.get("failures") == "0"
    assert int(root.get("tests", "0")) >= 13


def test_two_plans_are_two_suites_with_summed_totals() -> None:
    root = junit_of(SEED, SAFE)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["seed-demo", "seed-demo-safe"]
    assert root.get("failures") == "6"
    assert int(root.get("tests", "0")) == sum(int(s.get("tests", "0")) for s in suites)


def test_waived_finding_is_skipped_not_failed(tmp_path: Path) -> None:
    root = junit_of(waived_seed(tmp_path))
    assert (root.get("failures"), root.get("skipped")) == ("0", "1")
    skipped = root.find(".//testcase[@name='bulk-capped: embeddings']/skipped")
    assert skipped is not None and skipped.get("message") == "waived: runs only at night"


def test_unreadable_file_is_a_failing_case_in_the_input_suite(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"models": [}', encoding="utf-8")
    root = junit_of(bad)
    [suite] = root.findall("testsuite")
    assert (suite.get("name"), suite.get("failures")) == ("input", "1")
    assert suite[0].get("name", "").startswith("schema: ")


def test_control_characters_cannot_break_the_xml() -> None:
    finding = Finding(rule="schema", severity="error", message="bad \x01 byte \x1b[31m", file="x.yaml", line=1)
    root = ET.fromstring(render(Report(input_findings=[finding]), "junit"))
    failure = root.find(".//failure")
    assert failure is not None and failure.get("message") == "bad \ufffd byte \ufffd[31m"

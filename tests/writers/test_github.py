"""GitHub workflow commands: one annotation per finding, on its file, line and column."""

from __future__ import annotations

import re
from pathlib import Path

from policy.findings import Finding
from policy.report import Report
from policy.writers import render
from policy.writers.github import annotation
from writer_helpers import at_root  # noqa: F401  (autouse: run from the repository root)
from writer_helpers import SEED, SEED_FINDINGS, SEED_LINES, report_of, waived_seed

COMMAND = re.compile(r"^::(error|warning|notice) file=([^,]+),line=(\d+),col=(\d+),title=([^:]+)::(.+)$")


def test_seed_demo_annotates_each_finding_on_its_line() -> None:
    lines = render(report_of(SEED), "github").splitlines()
    commands = [COMMAND.match(line) for line in lines if line.startswith("::")]
    assert len(commands) == 6 and all(commands)
    seen = set()
    for match in commands:
        assert match is not None
        kind, file, line, _col, title, message = match.groups()
        model = message.split(":")[0]
        assert (kind, file, int(line)) == ("error", SEED, SEED_LINES[model])
        seen.add((title, model))
    assert seen == SEED_FINDINGS
    assert lines[-1] == "gpuadmit: 6 errors, 0 warnings, 0 info, 0 waived in 1 plan"


def test_memory_line_is_printed_for_each_gpu() -> None:
    text = render(report_of(SEED), "github")
    assert "  gpu0  [" in text and "53.0 / 80.0 GiB committed (66 %)" in text


def test_data_and_properties_are_escaped() -> None:
    finding = Finding(
        rule="memory-fit",
        severity="warning",
        message="91 % used\r\nsecond line",
        file="plans/a,b:c.yaml",
        line=3,
        column=1,
        fix=None,
    )
    assert annotation(finding) == (
        "::warning file=plans/a%2Cb%3Ac.yaml,line=3,col=1,title=memory-fit::91 %25 used%0D%0Asecond line"
    )


def test_info_is_a_notice_and_input_errors_without_a_line_name_the_file() -> None:
    report = Report(
        input_findings=[Finding(rule="schema", severity="error", message="binary file", file="x.json")],
    )
    report.plans = []
    info = Finding(rule="memory-headroom", severity="info", message="m", file="p.yaml", line=2)
    assert render(report, "github").splitlines()[0] == "::error file=x.json,title=schema::binary file"
    assert annotation(info).startswith("::notice file=p.yaml,line=2,title=memory-headroom::")


def test_waived_finding_is_a_notice_with_its_reason(tmp_path: Path) -> None:
    lines = [line for line in render(report_of(waived_seed(tmp_path)), "github").splitlines() if line.startswith("::")]
    assert len(lines) == 1
    assert lines[0].startswith("::notice file=")
    assert ",line=4,col=6,title=bulk-capped (waived)::embeddings: bulk model uncapped" in lines[0]
    assert lines[0].endswith("%0Awaived: runs only at night")

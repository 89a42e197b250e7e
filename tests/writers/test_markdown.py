"""The Markdown job summary: each GPU's memory bar and numbers, the findings, the waived ones apart."""

from __future__ import annotations

from pathlib import Path

from policy.findings import Finding
from policy.report import PlanReport, Report
from policy.writers import render
from writer_helpers import at_root  # noqa: F401  (autouse: run from the repository root)
from writer_helpers import SAFE, SEED, SEED_FINDINGS, report_of, waived_seed


def test_seed_demo_summary_shows_the_memory_bar_and_the_six_findings() -> None:
    text = render(report_of(SEED), "markdown")
    assert text.startswith("## gpuadmit: 🛑 6 errors, 0 warnings, 0 info, 0 waived in 1 plan\n")
    assert "### Plan `seed-demo` — `samples/seed-demo.yaml`" in text
    [gpu_row] = [line for line in text.splitlines() if line.startswith("| `gpu0`")]
    assert "| `[███" in gpu_row and "▒" in gpu_row and "░]` |" in gpu_row
    assert "| 53.0 GiB (66 %) | 76.0 GiB | 80.0 GiB |" in gpu_row
    assert (
        "51.0 GiB declared + 2.0 GiB CUDA contexts; by model: chat-llm 42.0, reranker 6.0, embeddings 2.0, guard 1.0" in gpu_row
    )
    rows = [line for line in text.splitlines() if line.startswith("| 🛑 error |")]
    assert len(rows) == 6
    assert {(row.split(" | ")[1].strip("`"), row.split(" | ")[2]) for row in rows} == SEED_FINDINGS
    assert "| `samples/seed-demo.yaml:5` | cap embeddings:" in text


def test_safe_sample_says_no_findings() -> None:
    text = render(report_of(SAFE), "markdown")
    assert text.startswith("## gpuadmit: ✅ 0 errors")
    assert "✅ No findings." in text


def test_waived_findings_are_listed_apart_with_their_reason(tmp_path: Path) -> None:
    text = render(report_of(waived_seed(tmp_path)), "markdown")
    assert "1 waived in 1 plan" in text.splitlines()[0]
    assert "| 🛑" not in text
    waived = text[text.index("**Waived (1)**") :]
    assert "| `bulk-capped` | embeddings | embeddings: bulk model uncapped" in waived
    assert waived.rstrip().endswith("| runs only at night |")


def test_pipes_and_newlines_stay_inside_their_cell() -> None:
    finding = Finding(rule="schema", severity="warning", message="a | b\nc", model="m|x", file="p.yaml", line=2)
    report = Report(plans=[PlanReport(name="p", file="p.yaml", findings=[finding])])
    [row] = [line for line in render(report, "markdown").splitlines() if line.startswith("| ⚠️")]
    assert row == "| ⚠️ warning | `schema` | m\\|x | a \\| b<br>c | `p.yaml:2` |  |"

"""Markdown for a pull-request job summary (`$GITHUB_STEP_SUMMARY`) or a review comment.

Per plan: a table with each GPU's memory bar and numbers, then the findings (severity,
rule, subject, message, file:line, fix), then the waived findings on their own, so an
accepted risk stays in view without reading as a failure.
"""

from __future__ import annotations

from ..findings import Finding
from ..report import PlanReport, Report
from .bars import memory_bar, parts_line

EMOJI = {"error": "🛑", "warning": "⚠️", "info": "ℹ️"}
BAR_WIDTH = 30


def write(report: Report, *, color: bool = False) -> str:
    out = [f"## gpuadmit: {_headline(report)}", ""]
    if report.input_findings:
        out += ["### Input that could not be read", ""]
        out += _findings_table([f for f in report.input_findings if not f.waived])
        out.append("")
    for plan in report.plans:
        out += _plan(plan)
    if not report.plans and not report.input_findings:
        out += ["No plans found in the given paths.", ""]
    return "\n".join(out)


def _headline(report: Report) -> str:
    counts = report.counts()
    plans = len(report.plans)
    mark = "🛑" if counts["error"] else "⚠️" if counts["warning"] else "✅"
    return (
        f"{mark} {counts['error']} errors, {counts['warning']} warnings, {counts['info']} info, "
        f"{counts['waived']} waived in {plans} plan{'s' if plans != 1 else ''}"
    )


def _plan(plan: PlanReport) -> list[str]:
    where = f" — `{plan.file}`" if plan.file else ""
    out = [f"### Plan `{plan.name}`{where}", ""]
    if plan.gpus:
        out += [
            "| GPU | sharing | memory | committed | usable | capacity | made of |",
            "|---|---|---|--:|--:|--:|---|",
        ]
        for gpu in plan.gpus:
            capacity = f"{gpu.capacity_gb:.1f} GiB" if gpu.capacity_gb is not None else "unknown"
            usable = f"{gpu.usable_gb:.1f} GiB" if gpu.usable_gb is not None else "unknown"
            pct = f" ({100.0 * gpu.committed_gb / gpu.capacity_gb:.0f} %)" if gpu.capacity_gb else ""
            product = f" {gpu.product}" if gpu.product else ""
            out.append(
                f"| `{_cell(gpu.id)}`{_cell(product)} | {_cell(gpu.sharing)} | `{memory_bar(gpu, BAR_WIDTH)}` "
                f"| {gpu.committed_gb:.1f} GiB{pct} | {usable} | {capacity} | {_cell(parts_line(gpu))} |"
            )
        out.append("")
    active = [f for f in plan.findings if not f.waived]
    waived = [f for f in plan.findings if f.waived]
    if active:
        out += _findings_table(active)
    else:
        out.append("✅ No findings.")
    out.append("")
    if waived:
        out += [f"**Waived ({len(waived)})**: reported, not failing.", ""]
        out += ["| rule | subject | message | where | reason |", "|---|---|---|---|---|"]
        out += [
            f"| `{f.rule}` | {_cell(f.subject)} | {_cell(f.message)} | {_where(f)} | {_cell(f.waiver_reason or '')} |"
            for f in waived
        ]
        out.append("")
    return out


def _findings_table(findings: list[Finding]) -> list[str]:
    out = ["| | rule | subject | message | where | fix |", "|---|---|---|---|---|---|"]
    for f in findings:
        out.append(
            f"| {EMOJI[f.severity]} {f.severity} | `{f.rule}` | {_cell(f.subject)} | {_cell(f.message)} "
            f"| {_where(f)} | {_cell(f.fix or '')} |"
        )
    return out


def _where(finding: Finding) -> str:
    if not finding.file:
        return ""
    return f"`{_cell(finding.file)}" + (f":{finding.line}" if finding.line else "") + "`"


def _cell(text: str) -> str:
    """Table-safe text: pipes escaped (also inside code spans, as GitHub requires), one line."""
    return text.replace("|", "\\|").replace("\r", "").replace("\n", "<br>")

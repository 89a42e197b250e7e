"""Human-readable output: each GPU's memory bar, then the findings about it."""

from __future__ import annotations

from ..findings import Finding
from ..report import PlanReport, Report
from .bars import memory_bar, memory_line, parts_line

_COLORS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[36m", "waived": "\033[2m"}
_RESET, _BOLD = "\033[0m", "\033[1m"


def write(report: Report, *, color: bool = False) -> str:
    out: list[str] = []
    paint = _painter(color)
    for finding in report.input_findings:
        out.append(_finding_line(finding, paint))
    for plan in report.plans:
        out.extend(_plan(plan, paint))
    if report.plans or not report.input_findings:
        out.append(_summary(report))
    return "\n".join(out) + "\n"


def _painter(color: bool):  # type: ignore[no-untyped-def]
    def paint(text: str, style: str) -> str:
        if not color:
            return text
        code = _BOLD if style == "bold" else _COLORS.get(style, "")
        return f"{code}{text}{_RESET}"

    return paint


def _plan(plan: PlanReport, paint) -> list[str]:  # type: ignore[no-untyped-def]
    where = f"{plan.file} — " if plan.file else ""
    out = [paint(f"{where}plan {plan.name}", "bold")]
    shown: set[int] = set()
    for gpu in plan.gpus:
        label = f"{gpu.id}  {gpu.product or 'product not given'}  {gpu.sharing}"
        out.append(f"  {label}")
        out.append(f"    {memory_bar(gpu)}  {memory_line(gpu)}")
        out.append(f"    {parts_line(gpu)}")
        for n, finding in enumerate(plan.findings):
            if n not in shown and finding.gpu == gpu.id:
                shown.add(n)
                out.append("    " + _finding_line(finding, paint))
    rest = [f for n, f in enumerate(plan.findings) if n not in shown]
    if rest:
        out.append("  other findings")
        out.extend("    " + _finding_line(f, paint) for f in rest)
    out.append("")
    return out


def _finding_line(finding: Finding, paint) -> str:  # type: ignore[no-untyped-def]
    label = "waived" if finding.waived else finding.severity
    where = ""
    if finding.file:
        where = finding.file + (f":{finding.line}" if finding.line else "")
        where += (f":{finding.column}" if finding.line and finding.column else "") + ": "
    line = f"{paint(f'{label:<7}', label)} {finding.rule:<28} {where}{finding.message}"
    if finding.waived:
        line += f"  (waived: {finding.waiver_reason})"
    elif finding.fix and finding.rule != "schema":  # input errors stay one line
        line += f"\n{'':<41}fix: {finding.fix}"
    return line


def _summary(report: Report) -> str:
    counts = report.counts()
    plans = len(report.plans)
    return (
        f"{counts['error']} errors, {counts['warning']} warnings, {counts['info']} info, "
        f"{counts['waived']} waived in {plans} plan{'s' if plans != 1 else ''}"
    )

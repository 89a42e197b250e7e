"""GitHub Actions workflow commands: each finding becomes an annotation on its file and line.

    ::error file=plans/a.yaml,line=5,col=6,title=bulk-capped::embeddings: bulk model uncapped ...

Errors are `::error`, warnings `::warning`, info `::notice`. Waived findings are
`::notice` annotations titled `<rule> (waived)` with the reason, so a waiver stays
visible on the pull request without failing it. Each GPU's memory line is printed as
plain log text, and a last line counts the findings.
"""

from __future__ import annotations

from pathlib import Path

from ..findings import Finding
from ..report import Report
from .bars import memory_bar, memory_line

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def write(report: Report, *, color: bool = False) -> str:
    out: list[str] = []
    for plan in report.plans:
        where = f" ({plan.file})" if plan.file else ""
        out.append(f"gpuadmit: plan {plan.name}{where}")
        out.extend(f"  {gpu.id}  {memory_bar(gpu, 20)}  {memory_line(gpu)}" for gpu in plan.gpus)
    out.extend(annotation(finding) for finding in report.findings)
    counts = report.counts()
    plans = len(report.plans)
    out.append(
        f"gpuadmit: {counts['error']} errors, {counts['warning']} warnings, {counts['info']} info, "
        f"{counts['waived']} waived in {plans} plan{'s' if plans != 1 else ''}"
    )
    return "\n".join(out) + "\n"


def annotation(finding: Finding) -> str:
    """One workflow command for one finding."""
    command = "notice" if finding.waived else COMMANDS[finding.severity]
    properties: list[tuple[str, str]] = []
    if finding.file:
        properties.append(("file", _relative(finding.file)))
        if finding.line:
            properties.append(("line", str(finding.line)))
            if finding.column:
                properties.append(("col", str(finding.column)))
    properties.append(("title", f"{finding.rule} (waived)" if finding.waived else finding.rule))
    message = finding.message
    if finding.waived:
        message += f"\nwaived: {finding.waiver_reason}"
    elif finding.fix:
        message += f"\nfix: {finding.fix}"
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties)
    return f"::{command} {props}::{escape_data(message)}"


def _relative(file: str) -> str:
    """Annotations need the path from the repository root (the job's working directory)."""
    path = Path(file)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            pass
    return path.as_posix()


def escape_data(text: str) -> str:
    """The message part: `%`, CR and LF are percent-encoded (as in actions/toolkit)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value: as data, plus `:` and `,`, which separate properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")

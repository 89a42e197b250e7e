"""Findings and severities: what every layer reports, at the bottom of the import graph.

Readers, the fact builder, the engine, writers and entry points all speak in findings,
so this module imports nothing of gpuadmit's own (tests/test_layers.py checks it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
#: Every severity, lowest first.
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error")
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}
FailOn = Literal["error", "warning", "never"]


@dataclass
class Finding:
    """One thing a rule found about one subject (a model, a GPU, a waiver or the input)."""

    rule: str
    severity: Severity
    message: str
    model: str | None = None
    gpu: str | None = None
    file: str | None = None
    line: int | None = None
    column: int | None = None
    fix: str | None = None
    waived: bool = False
    waiver_reason: str | None = None
    #: Where the waiver lives: "plan" (in the judged file itself) or "config" (the project config).
    waiver_source: str | None = None
    plan: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def counts(self) -> bool:
        """Waived findings are reported but never fail a run."""
        return not self.waived

    @property
    def subject(self) -> str:
        """What the finding is about, as writers name it: the model, the GPU, the plan or the file."""
        return self.model or self.gpu or self.plan or self.file or "input"


def lower_severity(severity: Severity, cap: Severity | None) -> Severity:
    """`severity`, lowered to `cap` when that is lower; never raised."""
    if cap is None or SEVERITY_RANK[cap] >= SEVERITY_RANK[severity]:
        return severity
    return cap

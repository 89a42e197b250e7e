"""The report: the findings of every plan a run judged, as every writer prints them."""

from __future__ import annotations

from dataclasses import dataclass, field

from .facts import Facts, GpuSummary
from .findings import FailOn, Finding, Severity
from .verdict import decide

__all__ = ["RuleInfo", "PlanReport", "Report"]


@dataclass(frozen=True)
class RuleInfo:
    """A rule's metadata as writers need it (SARIF rule entries, JUnit passing cases).

    Carried on the Report so that writers describe rules without loading or judging them.
    """

    id: str
    title: str
    description: str
    remediation: str
    severity: Severity
    scope: str


@dataclass
class PlanReport:
    """The verdict on one plan: its findings, and its GPUs' memory through its facts."""

    name: str
    file: str | None
    findings: list[Finding] = field(default_factory=list)
    facts: Facts | None = field(default=None, repr=False, compare=False)

    @property
    def gpus(self) -> list[GpuSummary]:
        """Each GPU's memory bar, built on first use: the webhook never draws one."""
        return self.facts.summaries if self.facts is not None else []


@dataclass
class Report:
    """Everything one run found, across every plan it read."""

    plans: list[PlanReport] = field(default_factory=list)
    #: Findings not tied to a readable plan (unreadable files, schema errors).
    input_findings: list[Finding] = field(default_factory=list)
    #: The enabled rules this run judged with, in id order (empty when the caller did not say).
    rules: list[RuleInfo] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [*self.input_findings, *(f for p in self.plans for f in p.findings)]

    @property
    def unusable_input(self) -> bool:
        return decide(self.findings).unusable_input

    def failed(self, fail_on: FailOn = "error") -> bool:
        """Findings at or above `fail_on` (or unusable input): decided by `policy.verdict`."""
        return not decide(self.findings, fail_on=fail_on).allowed

    def exit_code(self, fail_on: FailOn = "error") -> int:
        """0 clean, 1 findings at or above `fail_on`, 2 unusable input (`policy.verdict`)."""
        return decide(self.findings, fail_on=fail_on).exit_code

    def counts(self) -> dict[str, int]:
        totals = {"error": 0, "warning": 0, "info": 0, "waived": 0}
        for f in self.findings:
            totals["waived" if f.waived else f.severity] += 1
        return totals

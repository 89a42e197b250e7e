"""One semantics for a verdict: findings, and how strict the caller is, to a decision.

Every entry point decides here: `gpuadmit lint`'s exit code, the library's
`Report.failed`/`exit_code`, the CI entry point and the admission webhook.

- Waived findings are reported and never count.
- **Unusable input** (a counting `schema` error): nothing else about it can be trusted.
  Exit 2, and the webhook denies it, whatever `fail_on` says.
- **Failing** findings are the counting ones at or above `fail_on` (`error` by default,
  `warning`, or `never`): exit 1, and the webhook denies with them.
- `mode: audit` (webhook) allows everything and reports what it would have denied.
- `fail_open` (webhook) covers gpuadmit's own failures only: an internal error or a
  missed deadline, when there are no findings to judge by. Bad input is a finding, so
  it is never allowed by failing open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

from .findings import SEVERITY_RANK, FailOn, Finding

Mode = Literal["enforce", "audit"]
#: The rule whose errors mean the input could not be used (exit 2).
UNUSABLE_INPUT_RULE = "schema"
EXIT_CLEAN, EXIT_FINDINGS, EXIT_UNUSABLE = 0, 1, 2


@dataclass(frozen=True)
class Verdict:
    """What was decided, and the findings it was decided by."""

    allowed: bool
    #: Counting findings at or above `fail_on`, plus unusable-input errors whatever `fail_on` says.
    failing: tuple[Finding, ...] = ()
    #: Counting warnings that are not failing: shown beside an allow or a deny.
    warnings: tuple[Finding, ...] = ()
    unusable_input: bool = False
    #: True when gpuadmit itself failed (no verdict on the findings could be reached).
    failure: bool = False
    #: Audit mode: allowed, but enforcing would have denied.
    would_deny: bool = False
    counting: tuple[Finding, ...] = field(default=(), repr=False)

    @property
    def exit_code(self) -> int:
        """0 clean, 1 findings at or above `fail_on`, 2 unusable input."""
        if self.unusable_input:
            return EXIT_UNUSABLE
        return EXIT_FINDINGS if self.failing else EXIT_CLEAN


def decide(
    findings: Sequence[Finding],
    *,
    fail_on: FailOn = "error",
    mode: Mode = "enforce",
) -> Verdict:
    """The verdict on a set of findings. There is no `fail_open` here: findings, bad
    input included, are always judged; see `decide_failure` for gpuadmit's own failures."""
    threshold = None if fail_on == "never" else SEVERITY_RANK[fail_on]
    counting: list[Finding] = []
    failing: list[Finding] = []
    warnings: list[Finding] = []
    unusable = False
    for finding in findings:
        if not finding.counts:
            continue
        counting.append(finding)
        bad_input = finding.rule == UNUSABLE_INPUT_RULE and finding.severity == "error"
        unusable = unusable or bad_input
        if bad_input or (threshold is not None and SEVERITY_RANK[finding.severity] >= threshold):
            failing.append(finding)
        elif finding.severity == "warning":
            warnings.append(finding)
    deny = bool(failing)
    return Verdict(
        allowed=mode == "audit" or not deny,
        failing=tuple(failing),
        warnings=tuple(warnings),
        unusable_input=unusable,
        would_deny=mode == "audit" and deny,
        counting=tuple(counting),
    )


def decide_failure(*, fail_open: bool) -> Verdict:
    """The verdict when gpuadmit could not judge at all (internal error, deadline):
    denied, unless the operator chose to fail open."""
    return Verdict(allowed=fail_open, failure=True)

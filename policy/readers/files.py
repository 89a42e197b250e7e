"""File access as a capability: whether a reader may follow what an input points at.

An input can name other files: a ServingPlan's `triton.repository`, the
`gpuadmit.dev/triton-repository` annotation, tritonserver's `--model-repository` (or
`--model-store`) flag. Readers follow such a reference only when their caller hands
them a `Files`:

- `gpuadmit lint`, the library and the CI entry point pass one. The user pointed them
  at a folder on their own machine; a relative reference is resolved against the folder
  of the file that makes it.
- The admission webhook passes none. A verdict on an admitted object depends on that
  object alone (plus declared cluster state), never on what happens to lie on the
  webhook pod's disk, and its answers never name a path there.

A reference that is not followed is a `repository-read` finding that says so and how to
judge the repository instead (in CI, with `gpuadmit lint`); see rules/repository-read.yaml
for its severities. The finding never repeats the path: on the webhook that would tell
whoever can create objects what exists on the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..findings import Finding

RULE = "repository-read"
#: How to judge a repository that admission did not read.
LINT_IN_CI = "judge the repository where it lives: in CI, `gpuadmit lint <repository>` (with this plan or manifest beside it)"


@dataclass(frozen=True)
class Files:
    """Permission to read this machine's files on behalf of an input."""

    def resolve(self, referrer: str | None, named: str) -> Path:
        """`named` as the file `referrer` means it: relative to that file's folder."""
        base = Path(referrer).parent if referrer else Path()
        return base / named


def not_followed(
    what: str,
    consequence: str,
    *,
    severity: Literal["error", "warning"],
    file: str | None,
    line: int | None,
    column: int | None = None,
    plan: str | None = None,
    model: str | None = None,
) -> Finding:
    """A `repository-read` finding: `what` (a field, never its value) was not followed."""
    return Finding(
        rule=RULE,
        severity=severity,
        message=f"{what} was not followed: {consequence}",
        model=model,
        file=file,
        line=line,
        column=column,
        fix=LINT_IN_CI,
        plan=plan,
    )

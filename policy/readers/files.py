"""File access as a capability: whether a reader may follow what an input points at.

An input can name other files: a ServingPlan's `triton.repository`, the
`gpuadmit.dev/triton-repository` annotation, tritonserver's `--model-repository` (or
`--model-store`) flag. Readers follow such a reference only when their caller hands
them a `Files`:

- `gpuadmit lint`, the library and the CI entry point pass one. The user pointed them
  at a folder on their own machine; a relative reference is resolved against the folder
  of the file that makes it. It is followed only inside the folders being linted: the
  working directory, each path given (a file's own folder), and any `--files-root`. A
  pull-request check runs on files anyone may propose, so a plan must not make it read
  the runner's other files (`triton.repository: /home/runner/.ssh`), and an absolute
  `--model-repository=/models` is a path inside the container image, not on this
  machine. Links are followed before the check, so a link out of the folder is outside.
- The admission webhook passes none. A verdict on an admitted object depends on that
  object alone (plus declared cluster state), never on what happens to lie on the
  webhook pod's disk, and its answers never name a path there.

A reference that is not followed is a `repository-read` finding that says so and how to
judge the repository instead (in CI, with `gpuadmit lint`); see rules/repository-read.yaml
for its severities. The finding never repeats the path: on the webhook that would tell
whoever can create objects what exists on the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

from ..findings import Finding

RULE = "repository-read"
#: How to judge a repository that admission did not read.
LINT_IN_CI = "judge the repository where it lives: in CI, `gpuadmit lint <repository>` (with this plan or manifest beside it)"


#: Why a reference outside the folders being linted was not followed.
OUTSIDE_HINT = "--files-root DIR adds a folder to those read"
OUTSIDE = f"it points outside the folders being linted ({OUTSIDE_HINT})"


@dataclass(frozen=True)
class Files:
    """Permission to read this machine's files on behalf of an input, inside `roots`
    (absolute, links resolved; by default the working directory)."""

    roots: tuple[Path, ...] = field(default_factory=lambda: (Path.cwd().resolve(),))

    @classmethod
    def within(cls, paths: Sequence[str | Path], extra_roots: Sequence[str | Path] = ()) -> Files:
        """Access inside the working directory, each of `paths` (a file's folder) and `extra_roots`."""
        roots = [Path.cwd(), *(Path(r) for r in extra_roots)]
        for path in paths:
            if str(path) == "-":  # standard input: no folder of its own
                continue
            path = Path(path)
            roots.append(path if path.is_dir() else path.parent)
        return cls(tuple(dict.fromkeys(root.resolve() for root in roots)))

    def resolve(self, referrer: str | None, named: str) -> Path:
        """`named` as the file `referrer` means it: relative to that file's folder."""
        base = Path(referrer).parent if referrer else Path()
        return base / named

    def permits(self, path: Path) -> bool:
        """Whether `path`, its links followed, lies inside one of the roots."""
        try:
            real = path.resolve()
        except (OSError, RuntimeError):  # a loop of links
            return False
        return any(real.is_relative_to(root) for root in self.roots)


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

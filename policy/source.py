"""A plan together with where it came from, so findings can point at lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .plan import ServingPlan
from .findings import Finding

#: (line, column), or (line, column, file) when the subject sits in another file than
#: the plan's (a Triton repository: each model in its own config.pbtxt).
Position = tuple[int, int] | tuple[int, int, str]


@dataclass
class PlanSource:
    """What every reader returns: the plan, its file, and the position of each subject.

    `positions` keys are `(kind, name)` or `(kind, name, field)` with kind one of
    model, gpu, waiver, plan; values are 1-based (line, column), optionally followed by
    the file they are in when that is not `file`.
    """

    plan: ServingPlan
    file: str | None = None
    line: int | None = None
    positions: dict[tuple[Any, ...], Position] = field(default_factory=dict)
    #: Findings the reader made itself (placeholders, estimates, ignored settings).
    findings: list[Finding] = field(default_factory=list)
    #: The language the input speaks, for fix hints: "plan", "triton" or "kubernetes";
    #: `dialects` overrides it per subject `(kind, name)` (a Triton repository's models
    #: beside a plan's own).
    dialect: str = "plan"
    dialects: dict[tuple[str, Any], str] = field(default_factory=dict)

    def dialect_of(self, kind: str, name: Any) -> str:
        """The language the subject was written in."""
        return self.dialects.get((kind, name), self.dialect) if self.dialects else self.dialect

    def locate(self, kind: str, name: Any, field_name: str | None = None) -> tuple[str | None, int | None, int | None]:
        """(file, line, column) of a subject, or of one of its fields when present."""
        if field_name is not None:
            pos = self.positions.get((kind, name, field_name))
            if pos:
                return _file_of(pos, self.file), pos[0], pos[1]
        pos = self.positions.get((kind, name))
        if pos:
            return _file_of(pos, self.file), pos[0], pos[1]
        return self.file, self.line, None


def _file_of(pos: Position, default: str | None) -> str | None:
    return pos[2] if len(pos) > 2 else default

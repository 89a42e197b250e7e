"""One change the suggestion makes, with the reason for it, and the plan it edits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Change:
    """A field of a model or GPU set to a new value, and why.

    `path` is the plan field (`priority`, `rate_limit.max_queue`, `gpu`); `rule` is the
    rule the change satisfies (or `utilization` for a change made only to use the GPUs
    better); `reason` gives the numbers.
    """

    kind: str  # "model" | "gpu"
    name: str
    path: str
    old: Any
    new: Any
    rule: str
    reason: str
    #: The input's findings this change answers: "rule: message".
    fixes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "field": self.path,
            "old": self.old,
            "new": self.new,
            "rule": self.rule,
            "reason": self.reason,
            "fixes": list(self.fixes),
        }


class Edits:
    """Field updates to a plan's models and GPUs, recorded as changes."""

    def __init__(self) -> None:
        self.models: dict[str, dict[str, Any]] = {}
        self.gpus: dict[str, dict[str, Any]] = {}
        self.changes: list[Change] = []

    def set(self, kind: str, name: str, path: str, old: Any, new: Any, rule: str, reason: str) -> None:
        if old == new:
            return
        target = self.models if kind == "model" else self.gpus
        target.setdefault(name, {})[path] = new
        for change in self.changes:  # a later decision about the same field replaces the earlier one
            if change.kind == kind and change.name == name and change.path == path:
                change.new, change.rule, change.reason = new, rule, reason
                return
        self.changes.append(Change(kind, name, path, old, new, rule, reason))


def nested_get(data: dict[str, Any] | None, path: str) -> Any:
    """`rate_limit.max_queue` of a model's fields."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value

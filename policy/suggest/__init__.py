"""`gpuadmit suggest`: from an unsafe plan to the safe plan that uses the GPUs best.

    from policy import suggest
    result = suggest("samples/seed-demo.yaml")
    for plan in result.plans:
        for change in plan.changes: print(change.name, change.path, change.new, change.reason)

See docs/SUGGEST.md for what it may change and what it optimizes. The solver (OR-Tools
CP-SAT) is imported only when a plan has to be solved.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from ..config import ProjectConfig
    from ..findings import Finding
    from .planner import PlanSuggestion

__all__ = ["suggest", "Suggestion"]


@dataclass
class Suggestion:
    """The suggestions for every plan read, and the input that could not be read."""

    plans: list[PlanSuggestion] = field(default_factory=list)
    input_findings: list[Finding] = field(default_factory=list)

    @property
    def unusable_input(self) -> bool:
        from ..verdict import decide

        return decide(self.input_findings).unusable_input

    @property
    def impossible(self) -> bool:
        return any(p.status == "impossible" for p in self.plans)

    def exit_code(self) -> int:
        """0 every plan is (or can be made) safe, 1 some cannot, 2 unusable input."""
        if self.unusable_input:
            return 2
        return 1 if self.impossible else 0


def suggest(
    *paths: str | Path,
    config: ProjectConfig | str | Path | None = None,
    rule_dirs: Sequence[str | Path] = (),
    capacity: str = "declared",
    move: bool = False,
    time_limit: float = 10.0,
    optimize: bool = False,
    workers: int | None = None,
    files_roots: Sequence[str | Path] = (),
) -> Suggestion:
    """Suggest, for each plan in `paths`, the safe plan that uses its GPUs best.

    Reads what `lint` reads; `move` lets models change GPU (pinned ones never do);
    `time_limit` bounds each solve, in seconds; `optimize` improves plans that already pass.
    """
    from ..api import Linter, gc_paused
    from ..config import ProjectConfig, find_config, load_config
    from ..readers import read_paths
    from ..readers.files import Files
    from ..verdict import decide
    from .planner import suggest_source

    if not isinstance(config, ProjectConfig):
        config = load_config(Path(config) if config is not None else find_config())
    linter = Linter(config, rule_dirs, capacity=capacity)
    with gc_paused():
        read = read_paths(paths, ignore=config.ignored(), files=Files.within(paths, files_roots))
    result = Suggestion(input_findings=list(read.findings))
    if result.unusable_input:
        return result
    for source in read.sources:
        if decide(source.findings).unusable_input:
            result.input_findings.extend(source.findings)
            continue
        result.plans.append(suggest_source(source, linter, move=move, time_limit=time_limit, optimize=optimize, workers=workers))
    return result


class _CallableModule(types.ModuleType):
    """`policy.suggest(...)` calls the function even after `policy.suggest` the package is imported."""

    def __call__(self, *paths: str | Path, **options: Any) -> Suggestion:
        return suggest(*paths, **options)


sys.modules[__name__].__class__ = _CallableModule

"""The library entry point: `lint(...)` and the reusable `Linter` behind every front end."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .config import ProjectConfig, find_config, load_config
from .engine import RuleSet
from .readers import ReadResult, read_paths
from .report import Report
from .source import PlanSource


class Linter:
    """Rules compiled once, then any number of plans judged. Thread-safe for reading."""

    def __init__(
        self,
        config: ProjectConfig | None = None,
        rule_dirs: Sequence[str | Path] = (),
        capacity: str = "declared",
    ) -> None:
        self.config = config or ProjectConfig()
        self.rules = RuleSet.load([*self.config.rule_paths(), *map(Path, rule_dirs)], self.config.rules)
        #: "declared" (the plan itself), "nvml", or a capacity file; see policy.capacity.
        self.capacity = capacity

    def lint_sources(self, sources: Sequence[PlanSource], read: ReadResult | None = None) -> Report:
        report = Report()
        if read is not None:
            report.input_findings.extend(read.findings)
        for source in sources:
            report.plans.append(self.rules.judge(source, self.config.accounting, self.config.waivers))
        return report

    def lint_paths(self, paths: Sequence[str | Path]) -> Report:
        read = read_paths(paths)
        return self.lint_sources(read.sources, read)


def lint(
    *paths: str | Path,
    rule_dirs: Sequence[str | Path] = (),
    config: ProjectConfig | str | Path | None = None,
) -> Report:
    """Judge plan files/folders with the built-in rules (plus `rule_dirs`) and the project config.

    `config`: a ProjectConfig, a path to a config file, or None to look for
    `.gpuadmit.yaml` from the working directory upward.
    """
    if not isinstance(config, ProjectConfig):
        config = load_config(Path(config) if config is not None else find_config())
    return Linter(config, rule_dirs).lint_paths(paths)

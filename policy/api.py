"""The library entry point: `lint(...)` and the reusable `Linter` behind every front end."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from .config import ProjectConfig, find_config, load_config
from .configured import configured, refuse_locked
from .engine import RuleSet
from .domains import Batch
from .findings import Finding
from .readers import ReadResult, read_paths
from .readers.files import Files
from .report import Report, RuleInfo
from .source import PlanSource

if TYPE_CHECKING:
    from .capacity.providers import CapacityProvider


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
        self._specs = {r.id: r.spec for r in self.rules.rules}
        refuse_locked(self.config.rules, self._specs)
        self._rule_infos = tuple(
            RuleInfo(r.id, r.spec.title, r.spec.description, r.spec.remediation, r.spec.severity, r.spec.scope)
            for r in sorted(self.rules.rules, key=lambda r: r.id)
            if r.spec.enabled
        )
        #: "declared" (the plan itself), "nvml", "nodes" (in a pod), or a capacity file; see policy.capacity.
        self.capacity = capacity
        #: Read here for nvml and files, so a bad capacity file fails before any plan is judged.
        #: None for declared capacity: the plan is its own inventory, and the inventory
        #: model need not even be imported on the pre-commit path.
        self.capacity_provider: CapacityProvider | None = None
        if capacity != "declared":
            from .capacity.providers import open_provider

            self.capacity_provider = open_provider(capacity)

    def lint_sources(self, sources: Sequence[PlanSource], read: ReadResult | None = None) -> Report:
        report = Report(rules=list(self.rule_infos()))
        if read is not None:
            report.input_findings.extend(self.configured(read.findings))
        inventory = self.capacity_provider.inventory() if self.capacity_provider else None
        for source in sources:
            if source.findings:  # reader-made findings, configured like the rules' own
                source = dataclasses.replace(source, findings=self.configured(source.findings))
            judged = self.rules.judge(
                source,
                self.config.accounting,
                self.config.waivers,
                inventory=inventory,
                strict_capacity=self.config.strict_capacity,
            )
            report.plans.append(judged)
        return report

    def configured(self, findings: Sequence[Finding]) -> list[Finding]:
        """Findings a reader made, with the project's rule configuration applied (policy.configured)."""
        return configured(findings, self._specs) if findings else []

    def rule_infos(self) -> tuple[RuleInfo, ...]:
        """Metadata of the enabled rules, for writers that describe rules (SARIF, JUnit).

        Built with the Linter: its rules never change, and the webhook asks on every review.
        """
        return self._rule_infos

    def lint_paths(
        self, paths: Sequence[str | Path], neighbours: Sequence[Batch] = (), files_roots: Sequence[str | Path] = ()
    ) -> Report:
        """Judge files and folders on this machine, following the model repositories they
        name inside the folders being linted and `files_roots` (file access is what a
        caller pointing at paths has; admission has none). `neighbours` (a cluster's
        objects) join the domains they share."""
        with gc_paused():
            files = Files.within(paths, files_roots)
            read = read_paths(paths, ignore=self.config.ignored(), neighbours=neighbours, files=files)
            return self.lint_sources(read.sources, read)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Reading and judging a plan allocates many acyclic objects; the cyclic collector
    would rescan them again and again and find nothing to free (measured: 60 % of the
    time on a 10,000-model plan, 5 % of a webhook review). Nested or concurrent pauses
    are safe: the outermost one turns the collector back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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

"""`gpuadmit audit --cluster FILE`: every sharing domain of a cluster judged, as it runs now.

The snapshot's workloads are grouped by domain (policy.domains) and each domain is one plan
in the report: `--format json` lists them under `plans`, one per domain. `--policy-report FILE`
also writes the verdicts as `wgpolicyk8s.io/v1alpha2` PolicyReports (policy.cluster.policyreport).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .domains import group_with_plans

if TYPE_CHECKING:
    from .api import Linter
    from .cluster import ClusterView
    from .report import Report
    from .source import PlanSource


def audit(linter: Linter, view: ClusterView) -> tuple[Report, list[PlanSource]]:
    """The report on every domain of `view`, and the plans (domains) it judged."""
    from .api import gc_paused

    with gc_paused():
        _, grouped = group_with_plans([view.batch(judged=True)])
        report = linter.lint_sources(grouped.sources)
        report.input_findings.extend(grouped.findings)
    return report, grouped.sources

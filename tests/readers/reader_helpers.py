"""Shared helpers for the reader tests: where the real-world inputs live, and judging."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.api import Linter
from policy.findings import Finding
from policy.plan import Model
from policy.readers import read_paths
from policy.readers.files import Files
from policy.report import Report

REALWORLD = Path(__file__).resolve().parents[2] / ".." / "shared" / "realworld"

needs_realworld = pytest.mark.skipif(not REALWORLD.is_dir(), reason="../shared/realworld is not checked out here")

_LINTER: Linter | None = None


def judge(*paths: Path) -> Report:
    global _LINTER
    if _LINTER is None:
        _LINTER = Linter()
    return _LINTER.lint_paths([str(p) for p in paths])


def models(path: Path) -> dict[str, Model]:
    """Every model read from `path`, by name, as `gpuadmit lint` reads it (with file access)."""
    read = read_paths([path], files=Files.within([path]))
    assert not read.findings, read.findings
    return {m.name: m for source in read.sources for m in source.plan.models}


def rules(report: Report) -> set[tuple[str, str | None]]:
    return {(f.rule, f.model) for f in report.findings if f.counts}


def only(report: Report, rule: str) -> list[Finding]:
    return [f for f in report.findings if f.rule == rule]

"""Shared by the writer tests: sample paths, the seed demo's expected findings, and a
report made the way `gpuadmit lint` makes it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).with_name("data")
SEED = "samples/seed-demo.yaml"
SAFE = "samples/seed-demo-safe.yaml"
SEED_FINDINGS = {
    ("latency-critical-priority", "chat-llm"),
    ("latency-critical-priority", "guard"),
    ("latency-critical-rate-limit", "chat-llm"),
    ("latency-critical-rate-limit", "guard"),
    ("bulk-capped", "embeddings"),
    ("bulk-capped", "reranker"),
}
SEED_LINES = {"chat-llm": 4, "embeddings": 5, "reranker": 6, "guard": 7}
NEXT_YEAR = (dt.date.today() + dt.timedelta(days=365)).isoformat()
LAST_YEAR = (dt.date.today() - dt.timedelta(days=365)).isoformat()


def report_of(*paths: str | Path, waivers: list[dict[str, str]] | None = None):  # type: ignore[no-untyped-def]
    """The report `gpuadmit lint PATHS` makes, with no project config but `waivers`."""
    from policy.api import Linter
    from policy.config import ProjectConfig

    config = ProjectConfig.model_validate({"waivers": waivers or []})
    return Linter(config).lint_paths(list(paths))


def waived_seed(tmp_path: Path, expires: str = NEXT_YEAR) -> Path:
    """The seed demo in ServingPlan form with a plan waiver for embeddings' bulk-capped finding."""
    plan = tmp_path / "waived.yaml"
    plan.write_text(
        "GPU_GB: 80\n"
        "models:\n"
        "  - {name: chat-llm, gpu_gb: 42, sla_ms: 200, latency_critical: true, priority: 1,"
        " rate_limit: {max_concurrency: 8, max_queue: 16, queue_timeout_ms: 100, timeout_action: reject}}\n"
        "  - {name: embeddings, gpu_gb: 2, sla_ms: 30, priority: 3}\n"
        "waivers:\n"
        f"  - {{rule: bulk-capped, model: embeddings, reason: runs only at night, expires: {expires}}}\n",
        encoding="utf-8",
    )
    return plan


@pytest.fixture(autouse=True)
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lint from the repository root, so file names are the relative paths a CI job shows.

    Imported by each writer test module (no conftest.py here: a second `conftest`
    module would shadow the top-level one that other tests import from)."""
    monkeypatch.chdir(ROOT)

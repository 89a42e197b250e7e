"""The library entry point: `from policy import lint`."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, SAMPLES


def test_lint_returns_the_same_findings_as_the_cli() -> None:
    from policy import lint

    report = lint(SAMPLES / "seed-demo.yaml")
    assert report.exit_code() == 1
    assert sorted((f.rule, f.model) for f in report.findings) == sorted(
        [
            ("bulk-capped", "embeddings"),
            ("bulk-capped", "reranker"),
            ("latency-critical-priority", "chat-llm"),
            ("latency-critical-priority", "guard"),
            ("latency-critical-rate-limit", "chat-llm"),
            ("latency-critical-rate-limit", "guard"),
        ]
    )
    assert lint(SAMPLES / "seed-demo-safe.yaml").findings == []


def test_importing_policy_starts_nothing_and_loads_no_heavy_module() -> None:
    code = (
        "import sys, threading, policy\n"
        "heavy = [m for m in ('pydantic', 'yaml', 'cel_expr_python', 'pynvml', 'starlette', 'uvicorn') if m in sys.modules]\n"
        "print(heavy, threading.active_count())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[] 1"

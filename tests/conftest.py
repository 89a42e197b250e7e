"""Shared test setup: an isolated rule cache, the repository root, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

# Every test and every CLI it starts uses a private rule cache, never the user's.
os.environ["GPUADMIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="gpuadmit-cache-")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SHARED = ROOT.parent / "shared"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
    """`gpuadmit ARGS` in a subprocess, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "policy.cli", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def linter():  # type: ignore[no-untyped-def]
    from policy.api import Linter

    return Linter()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One webhook server shared by the review tests of a module (reviews are independent).

    It lives here rather than in `tests/webhook/conftest.py`: a second module named
    `conftest` would shadow this one for every `from conftest import ...` of a run that
    collects both folders.
    """
    from webhook_support import start_server  # tests/webhook is on sys.path once its tests are collected

    running = start_server(tmp_path_factory.mktemp("serve"))
    yield running
    running.stop()

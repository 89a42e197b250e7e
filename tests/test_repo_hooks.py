"""The repository's own checks: ruff and mypy configured once in pyproject.toml and run by
its own `.pre-commit-config.yaml`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_the_pre_commit_config_is_valid_and_runs_ruff_and_mypy() -> None:
    config = ROOT / ".pre-commit-config.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", str(config)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hooks = {hook["id"]: hook for repo in yaml.safe_load(config.read_text())["repos"] for hook in repo["hooks"]}
    assert set(hooks) == {"ruff", "mypy"}
    assert hooks["ruff"]["entry"].startswith("ruff check")
    assert hooks["mypy"]["entry"] == "mypy" and hooks["mypy"]["pass_filenames"] is False


def test_ruff_and_mypy_are_configured_in_pyproject_and_installed_for_tests() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    ruff = project["tool"]["ruff"]
    assert ruff["line-length"] == 130
    assert {"E", "F", "B"} <= set(ruff["lint"]["select"])
    assert project["tool"]["mypy"]["strict"] is True
    tests = " ".join(project["project"]["optional-dependencies"]["test"])
    assert "ruff" in tests and "mypy" in tests and "pre-commit" in tests

"""gpuadmit as a real pre-commit hook: a scratch repository uses this repository's
`.pre-commit-hooks.yaml` at the current commit, and `git commit` runs it.

pre-commit installs gpuadmit into its own virtual environment (a pip install of this
repository), once for both commits. When the working tree has uncommitted changes,
a snapshot of it is committed in a scratch repository first, so the hook under test is
the code on disk, not the last commit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "venv", "__pycache__", "*.pyc", "build", "dist", "*.egg-info", ".*_cache", ".hypothesis"
)


@dataclass
class Repo:
    path: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(args, cwd=self.path, env=self.env, capture_output=True, text=True, timeout=900)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("git", "-c", "commit.gpgsign=false", *args, check=check)


def _env(home: Path) -> dict[str, str]:
    """An isolated git identity and pre-commit cache; no global git config, no PYTHONPATH leaking in."""
    global_config = home / "gitconfig"
    global_config.write_text(
        "[user]\n\tname = gpuadmit test\n\temail = test@gpuadmit.invalid\n[init]\n\tdefaultBranch = main\n", encoding="utf-8"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"} and not k.startswith("GIT_")
    }
    env.update(
        GIT_CONFIG_GLOBAL=str(global_config),
        GIT_CONFIG_NOSYSTEM="1",
        PRE_COMMIT_HOME=str(home / "pre-commit"),
        PRE_COMMIT_COLOR="never",
    )
    return env


def _hook_source(tmp: Path, env: dict[str, str]) -> tuple[str, str]:
    """(repo, rev) for .pre-commit-config.yaml: this checkout at HEAD when it is clean, else a committed snapshot."""
    checkout = Repo(ROOT, env)
    is_git = (ROOT / ".git").exists()
    if is_git and not checkout.git("status", "--porcelain").stdout.strip():
        return str(ROOT), checkout.git("rev-parse", "HEAD").stdout.strip()
    snapshot = Repo(tmp / "gpuadmit-snapshot", env)
    if is_git:
        listed = checkout.git("ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout.split("\0")
        for name in filter(None, listed):
            source = ROOT / name
            if source.is_file():
                (snapshot.path / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, snapshot.path / name)
    else:
        shutil.copytree(ROOT, snapshot.path, ignore=SKIP)
    snapshot.git("init", "-q")
    snapshot.git("add", "-A")
    snapshot.git("commit", "-q", "-m", "snapshot of the working tree")
    return str(snapshot.path), snapshot.git("rev-parse", "HEAD").stdout.strip()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """A config repository with the gpuadmit hook installed, its config committed."""
    try:
        import pre_commit  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "pre-commit>=3.5"], check=True)
    tmp = tmp_path_factory.mktemp("precommit")
    env = _env(tmp)
    repo_url, rev = _hook_source(tmp, env)
    repo = Repo(tmp / "config-repo", env)
    repo.path.mkdir()
    repo.git("init", "-q")
    (repo.path / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {repo_url}\n    rev: {rev}\n    hooks:\n      - id: gpuadmit\n", encoding="utf-8"
    )
    repo.git("add", ".pre-commit-config.yaml")
    repo.git("commit", "-q", "-m", "use gpuadmit")
    repo.run(sys.executable, "-m", "pre_commit", "install")
    (repo.path / "plans").mkdir()
    return repo


def test_committing_the_seed_demo_fails_with_its_findings(scratch: Repo) -> None:
    commits = scratch.git("rev-list", "--count", "HEAD").stdout
    shutil.copy(ROOT / "samples" / "seed-demo.yaml", scratch.path / "plans" / "seed-demo.yaml")
    scratch.git("add", "plans/seed-demo.yaml")
    proc = scratch.git("commit", "-m", "four models on one GPU", check=False)
    shown = proc.stdout + proc.stderr
    assert proc.returncode == 1, shown
    assert "gpuadmit" in shown and "Failed" in shown
    for rule, line in (
        ("latency-critical-priority", 4),
        ("latency-critical-rate-limit", 4),
        ("bulk-capped", 5),
        ("bulk-capped", 6),
        ("latency-critical-priority", 7),
        ("latency-critical-rate-limit", 7),
    ):
        assert any(rule in row and f"plans/seed-demo.yaml:{line}:" in row for row in shown.splitlines()), (rule, line, shown)
    assert "6 errors, 0 warnings, 0 info, 0 waived in 1 plan" in shown
    assert scratch.git("rev-list", "--count", "HEAD").stdout == commits  # nothing was committed
    scratch.git("reset", "-q", "plans/seed-demo.yaml")
    (scratch.path / "plans" / "seed-demo.yaml").unlink()


def test_committing_the_safe_sample_passes(scratch: Repo) -> None:
    commits = int(scratch.git("rev-list", "--count", "HEAD").stdout)
    shutil.copy(ROOT / "samples" / "seed-demo-safe.yaml", scratch.path / "plans" / "seed-demo-safe.yaml")
    scratch.git("add", "plans/seed-demo-safe.yaml")
    proc = scratch.git("commit", "-m", "the same models, protected", check=False)
    shown = proc.stdout + proc.stderr
    assert proc.returncode == 0, shown
    assert "gpuadmit" in shown and "Passed" in shown
    assert int(scratch.git("rev-list", "--count", "HEAD").stdout) == commits + 1


def _commit_without_hook(repo: Repo, message: str, *paths: str) -> None:
    repo.git("add", *paths)
    repo.git("commit", "-q", "--no-verify", "-m", message)


def test_staging_one_config_of_an_overflowing_triton_repository_fails_the_commit(scratch: Repo) -> None:
    repository = scratch.path / "triton"
    shutil.copytree(ROOT / "samples" / "triton", repository)
    _commit_without_hook(scratch, "a Triton repository that fits", "triton")
    config = repository / "chat-llm" / "config.pbtxt"
    original = config.read_text(encoding="utf-8")
    config.write_text(
        "".join(line for line in original.splitlines(keepends=True) if '"kv_cache_free_gpu_mem_fraction"' not in line),
        encoding="utf-8",
    )
    commits = scratch.git("rev-list", "--count", "HEAD").stdout
    scratch.git("add", "triton/chat-llm/config.pbtxt")
    proc = scratch.git("commit", "-m", "TensorRT-LLM at its default KV-cache fraction", check=False)
    shown = proc.stdout + proc.stderr
    assert proc.returncode == 1, shown
    assert "memory-fit" in shown and "chat-llm (tensorrt_llm kv_cache_free_gpu_mem_fraction 0.9 (default)" in shown
    assert "1 errors, 0 warnings, 0 info, 0 waived in 1 plan" in shown  # the whole repository was judged
    assert scratch.git("rev-list", "--count", "HEAD").stdout == commits
    # The overflowing repository stays in the tree, committed past the hook ...
    _commit_without_hook(scratch, "the overflowing repository", "triton/chat-llm/config.pbtxt")


def test_staging_an_unrelated_file_beside_an_overflowing_repository_passes(scratch: Repo) -> None:
    assert (scratch.path / "triton" / "chat-llm" / "config.pbtxt").is_file()
    commits = int(scratch.git("rev-list", "--count", "HEAD").stdout)
    shutil.copy(ROOT / "samples" / "fleet-mps.yaml", scratch.path / "plans" / "fleet-mps.yaml")
    scratch.git("add", "plans/fleet-mps.yaml")
    proc = scratch.git("commit", "-m", "an unrelated plan", check=False)
    shown = proc.stdout + proc.stderr
    assert proc.returncode == 0, shown
    assert "Passed" in shown
    assert int(scratch.git("rev-list", "--count", "HEAD").stdout) == commits + 1

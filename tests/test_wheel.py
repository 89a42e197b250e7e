"""The built wheel carries the rules and the catalog: install it in a fresh virtual
environment, as a user would, and lint the seed demo from there."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

from conftest import ROOT, SAMPLES


def test_wheel_installs_and_lints_from_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    (wheel,) = dist.glob("gpuadmit-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    gpuadmit = env_dir / "bin" / "gpuadmit"
    # Run from an empty folder so nothing can be picked up from the checkout.
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "seed.yaml").write_text((SAMPLES / "seed-demo.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([str(gpuadmit), "lint", "seed.yaml"], cwd=workdir, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "latency-critical-priority" in run.stdout and "bulk-capped" in run.stdout
    assert "6 errors" in run.stdout
    listed = subprocess.run([str(gpuadmit), "rules", "list"], cwd=workdir, capture_output=True, text=True, env=env, timeout=120)
    assert "builtin_rules" not in listed.stdout and "memory-fit" in listed.stdout
    where = subprocess.run(
        [str(python), "-c", "import policy.rules as r; print(r.builtin_rules_dir())"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert str(env_dir) in where  # the rules come from inside the installed wheel

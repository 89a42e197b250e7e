"""Sharing domains across files, standard input and declared placement: what can share a
GPU is judged together, whatever file it is written in (docs/DOMAINS.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, run_cli

DATA = Path(__file__).parent / "data"
SHARED_A100 = DATA / "shared-a100"
BOUND = DATA / "bound"


def lint_stdin(text: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policy.cli", "lint", *args, "-"],
        input=text,
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def findings(stdout: str) -> list[dict[str, object]]:
    return list(json.loads(stdout)["findings"])


def test_each_of_two_manifests_on_one_shared_gpu_passes_alone() -> None:
    for name in ("chat.yaml", "embeddings.yaml"):
        run = run_cli("lint", str(SHARED_A100 / name))
        assert run.code == 0, run.stdout + run.stderr
        assert "0 errors" in run.stdout


def test_two_manifests_in_two_files_that_overflow_one_shared_gpu_fail_the_folder() -> None:
    run = run_cli("lint", str(SHARED_A100), "--format", "json")
    assert run.code == 1, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert [p["name"] for p in report["plans"]] == ["shared-nvidia-a100-sxm4-80gb"]
    fit = [f for f in report["findings"] if f["rule"] == "memory-fit"]
    assert len(fit) == 1
    assert fit[0]["message"].startswith("shared-nvidia-a100-sxm4-80gb: 81.5 GiB committed > 76.0 GiB usable")
    models = {m["name"] for p in report["plans"] for g in p["gpus"] for m in g["models"]}
    assert models == {"chat-llm", "embeddings"}


def test_the_two_files_given_one_by_one_are_grouped_too() -> None:
    run = run_cli("lint", str(SHARED_A100 / "chat.yaml"), str(SHARED_A100 / "embeddings.yaml"))
    assert run.code == 1
    assert "memory-fit" in run.stdout and "81.5 GiB committed > 76.0 GiB usable" in run.stdout


def test_the_same_manifests_piped_to_standard_input_fail_with_stdin_lines() -> None:
    text = "".join((SHARED_A100 / name).read_text(encoding="utf-8") for name in ("chat.yaml", "embeddings.yaml"))
    proc = lint_stdin(text, "--format", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    fit = [f for f in findings(proc.stdout) if f["rule"] == "memory-fit"]
    # A GPU finding points at where the GPU is chosen: the first workload's node selector.
    selector = next(n for n, line in enumerate(text.splitlines(), 1) if "nvidia.com/gpu.product" in line)
    assert len(fit) == 1 and fit[0]["file"] == "<stdin>" and fit[0]["line"] == selector


def test_standard_input_with_one_manifest_passes() -> None:
    proc = lint_stdin((SHARED_A100 / "chat.yaml").read_text(encoding="utf-8"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "<stdin> — plan stdin" in proc.stdout


def test_standard_input_that_is_not_yaml_names_stdin_and_the_line() -> None:
    proc = lint_stdin("models:\n  - name: a\n   bad: [\n")
    assert proc.returncode == 2
    assert "<stdin>:" in proc.stdout + proc.stderr


def test_standard_input_json_is_read() -> None:
    plan = {"gpu_gb": 80, "models": [{"name": "a", "gpu_gb": 10}]}
    proc = lint_stdin(json.dumps(plan))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_workload_bound_to_a_serving_plan_joins_its_gpus() -> None:
    run = run_cli("lint", str(BOUND), "--format", "json")
    assert run.code == 1, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert [p["name"] for p in report["plans"]] == ["node-a"]
    gpu = report["plans"][0]["gpus"][0]
    assert {m["name"] for m in gpu["models"]} == {"chat-llm", "reranker"}
    fit = [f for f in report["findings"] if f["rule"] == "memory-fit"]
    assert fit and fit[0]["message"].startswith("gpu0: 77.5 GiB committed > 76.0 GiB usable")


def test_the_plan_alone_passes_and_the_bound_workload_alone_says_its_plan_is_missing() -> None:
    assert run_cli("lint", str(BOUND / "node-a.yaml")).code == 0
    run = run_cli("lint", str(BOUND / "reranker.yaml"), "--format", "json")
    assert run.code == 0
    missing = [f for f in findings(run.stdout) if f["rule"] == "schema"]
    assert len(missing) == 1 and missing[0]["severity"] == "warning"
    assert "'node-a' names a ServingPlan that is not in this input" in str(missing[0]["message"])


def test_exclusive_workloads_in_two_files_stay_two_plans(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, annotations: {{gpuadmit.dev/gpu-gb: '60'}}}}\n"
            "spec:\n  nodeSelector: {nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB}\n"
            "  containers: [{name: c, image: x, resources: {limits: {nvidia.com/gpu: 1}}}]\n",
            encoding="utf-8",
        )
    run = run_cli("lint", str(tmp_path), "--format", "json")
    assert run.code == 0, run.stdout
    assert sorted(p["name"] for p in json.loads(run.stdout)["plans"]) == ["a", "b"]


def test_a_changed_manifest_is_judged_with_the_manifests_that_share_its_gpus(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    import shutil

    shutil.copytree(SHARED_A100, repo / "apps")
    (repo / "plans").mkdir()
    shutil.copy(ROOT / "samples" / "fleet-mps.yaml", repo / "plans" / "fleet-mps.yaml")
    run = run_cli("lint", "--changed", "apps/embeddings.yaml", "--format", "json", cwd=repo)
    assert run.code == 1, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert [p["name"] for p in report["plans"]] == ["shared-nvidia-a100-sxm4-80gb"]
    assert any(f["rule"] == "memory-fit" for f in report["findings"])
    unrelated = run_cli("lint", "--changed", "plans/fleet-mps.yaml", "--format", "json", cwd=repo)
    assert unrelated.code == 0, unrelated.stdout
    assert [p["name"] for p in json.loads(unrelated.stdout)["plans"]] == ["fleet-mps"]

"""Kubernetes objects with the wrong shapes are one-line errors, never crashes."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli


def test_kserve_model_args_that_are_not_a_list_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "isvc.yaml"
    path.write_text(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: embed, namespace: ai}\n"
        "spec:\n  predictor:\n    model:\n      modelFormat: {name: huggingface}\n      args: 162618\n"
        "      resources: {limits: {nvidia.com/gpu: 1}}\n"
    )
    run = run_cli("lint", str(path))
    assert run.code == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert "args must be a list of strings" in run.stdout

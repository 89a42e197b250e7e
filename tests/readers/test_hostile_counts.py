"""Wrong shapes and absurd GPU counts are one-line errors, never crashes or huge allocations."""

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


def _repo(tmp_path: Path, config: str, model_json: str | None = None) -> Path:
    folder = tmp_path / "repo" / "m"
    (folder / "1").mkdir(parents=True)
    (folder / "config.pbtxt").write_text(config)
    if model_json is not None:
        (folder / "1" / "model.json").write_text(model_json)
    return tmp_path / "repo"


def test_triton_gpu_index_beyond_any_node_is_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path, 'name: "m"\nbackend: "onnxruntime"\ninstance_group [{count: 1, kind: KIND_GPU, gpus: [1000000000]}]\n')
    run = run_cli("lint", str(repo))
    assert run.code == 2
    assert "m: GPU index 1000000000, but a node has at most 64 GPUs" in run.stdout


def test_vllm_tensor_parallel_beyond_any_node_is_refused(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        'name: "m"\nbackend: "vllm"\ninstance_group [{count: 1, kind: KIND_MODEL}]\n',
        '{"model": "x", "tensor_parallel_size": 1000000000}',
    )
    run = run_cli("lint", str(repo))
    assert run.code == 2
    assert "tensor_parallel_size 1000000000, but a node has at most 64 GPUs" in run.stdout

"""How each framework holds GPU memory, as read from real configuration shapes.

Every case is written in the shape of a real file under shared/realworld (Triton
repositories, KServe and Kubernetes manifests, HAMi examples), never copied from one.
The numbers and their sources are in docs/SOURCES.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.facts import build_facts, sglang_default_fraction
from policy.plan import ServingPlan

from reader_helpers import judge, models, only, rules


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _gpu(report_plan: ServingPlan, gpu: str = "gpu0") -> dict:  # type: ignore[type-arg]
    return next(g for g in build_facts(report_plan).gpus if g["id"] == gpu)


# --- Triton ------------------------------------------------------------------------------

VLLM_CONFIG = 'backend: "vllm"\ninstance_group [ { count: 1, kind: KIND_MODEL } ]\n'
MODEL_JSON = '{"model": "meta-llama/Llama-2-7b-chat-hf", "disable_log_requests": true}\n'


def test_three_vllm_models_at_default_in_one_server_fail_without_capacity(tmp_path: Path) -> None:
    repo = _write(
        tmp_path / "repo",
        {f"{n}/config.pbtxt": VLLM_CONFIG for n in ("chat", "code", "summary")}
        | {f"{n}/1/model.json": MODEL_JSON for n in ("chat", "code", "summary")},
    )
    report = judge(repo)
    greedy = only(report, "greedy-allocator")
    assert any("add up to 2.76 > 1.0" in f.message for f in greedy), [f.message for f in greedy]
    assert any("left at its default" in f.message for f in greedy)


def test_tensorflow_in_triton_grows_on_demand_by_default(tmp_path: Path) -> None:
    repo = _write(
        tmp_path / "repo",
        {
            "bert/config.pbtxt": 'platform: "tensorflow_savedmodel"\nmax_batch_size: 8\n'
            'instance_group [ { count: 2, kind: KIND_GPU } ]\n',
            "resnet/config.pbtxt": 'platform: "onnxruntime_onnx"\nmax_batch_size: 8\n'
            'parameters { key: "gpu_mem_limit" value: { string_value: "4294967296" } }\n',
            "gpuadmit.yaml": "gpus: [{id: gpu0, product: L4}]\ntriton: {repository: .}\n"
            "models: [{name: bert, gpu_gb: 2}]\n",
        },
    )
    bert = models(repo)["bert"]
    assert (bert.framework, bert.memory_growth, bert.memory_fraction) == ("tensorflow", True, None)
    assert rules(judge(repo)) == set()


def test_tensorflow_in_triton_at_a_fraction_reserves_that_fraction_only(tmp_path: Path) -> None:
    repo = _write(
        tmp_path / "repo",
        {
            "bert/config.pbtxt": 'platform: "tensorflow_savedmodel"\ninstance_group [ { count: 1, kind: KIND_GPU } ]\n',
            "guard/config.pbtxt": 'backend: "pytorch"\ninstance_group [ { count: 1, kind: KIND_GPU } ]\n',
            "gpuadmit.yaml": "gpus: [{id: gpu0, product: A100-80GB}]\n"
            "triton: {repository: ., args: ['--backend-config=tensorflow,gpu-memory-fraction=0.2']}\n"
            "models: [{name: guard, gpu_gb: 6}]\n",
        },
    )
    assert models(repo)["bert"].memory_fraction == 0.2
    report = judge(repo)
    assert not only(report, "greedy-allocator") and not only(report, "memory-fit")
    (plan,) = report.plans
    assert plan.gpus[0].greedy_gb == pytest.approx(0.2 * 80)


def test_onnxruntime_gpu_mem_limit_is_its_declared_memory(tmp_path: Path) -> None:
    repo = _write(
        tmp_path / "repo",
        {
            "densenet/config.pbtxt": 'platform: "onnxruntime_onnx"\ninstance_group [ { count: 1, kind: KIND_GPU } ]\n'
            'parameters { key: "gpu_mem_limit" value: { string_value: "2147483648" } }\n',
            "classifier/config.pbtxt": 'backend: "pytorch"\ninstance_group [ { count: 1, kind: KIND_GPU } ]\n',
            "gpuadmit.yaml": "gpus: [{id: gpu0, product: T4}]\ntriton: {repository: .}\nmodels: [{name: classifier, gpu_gb: 1}]\n",
        },
    )
    report = judge(repo)
    assert not [f for f in only(report, "memory-declared") if f.model == "densenet"]
    (plan,) = report.plans
    assert plan.gpus[0].declared_gb + plan.gpus[0].greedy_gb == pytest.approx(2 + 1)


def test_eight_instances_in_one_tritonserver_hold_one_cuda_context(tmp_path: Path) -> None:
    repo = _write(
        tmp_path / "repo",
        {
            "encoder/config.pbtxt": 'backend: "onnxruntime"\ninstance_group [ { count: 8, kind: KIND_GPU } ]\n'
            'parameters { key: "gpu_mem_limit" value: { string_value: "1073741824" } }\n',
            "gpuadmit.yaml": "gpus: [{id: gpu0, product: L4}]\ntriton: {repository: .}\n",
        },
    )
    (plan,) = judge(repo).plans
    assert plan.gpus[0].context_gb == pytest.approx(0.5)


def test_llm_api_model_runs_on_the_gpu_under_a_cpu_instance_group(tmp_path: Path) -> None:
    config = (
        'name: "tensorrt_llm"\nbackend: "python"\ninstance_group [\n  {\n    count: 1\n    kind : KIND_CPU\n  }\n]\n'
    )
    engine = 'model: TinyLlama/TinyLlama-1.1B-Chat-v1.0\nbackend: "pytorch"\ntensor_parallel_size: 1\n'
    repo = _write(
        tmp_path / "repo",
        {
            "tensorrt_llm/config.pbtxt": config,
            "tensorrt_llm/1/model.yaml": engine,
            "embed/config.pbtxt": 'backend: "pytorch"\ninstance_group [ { count: 1, kind: KIND_GPU } ]\n',
            "gpuadmit.yaml": "gpus: [{id: gpu0, product: H100}]\ntriton: {repository: .}\nmodels: [{name: embed, gpu_gb: 2}]\n",
        },
    )
    llm = models(repo)["tensorrt_llm"]
    assert (llm.framework, llm.placed_on) == ("tensorrt_llm", ["gpu0"])
    greedy = only(judge(repo), "greedy-allocator")
    assert any("tensorrt_llm (tensorrt_llm kv_cache_free_gpu_mem_fraction unset = 0.9" in f.message for f in greedy)


def test_llm_api_kv_cache_bound_is_read(tmp_path: Path) -> None:
    engine = (
        "model: TinyLlama/TinyLlama-1.1B-Chat-v1.0\ntensor_parallel_size: 2\n"
        "kv_cache_config:\n  free_gpu_memory_fraction: 0.3\n  max_tokens: 8192\n"
    )
    repo = _write(
        tmp_path / "repo",
        {
            "tensorrt_llm/config.pbtxt": 'backend: "python"\ninstance_group [ { count: 1, kind: KIND_CPU } ]\n',
            "tensorrt_llm/1/model.yaml": engine,
            "gpuadmit.yaml": "gpus: [{id: a, product: H100}, {id: b, product: H100}]\ntriton: {repository: .}\n",
        },
    )
    llm = models(repo)["tensorrt_llm"]
    assert (llm.memory_fraction, llm.kv_cache_tokens, llm.placed_on) == (0.3, 8192, ["a", "b"])


def test_trtllm_max_tokens_in_paged_kv_cache_with_a_declared_size_is_not_a_default_fraction(tmp_path: Path) -> None:
    trtllm = (
        'backend: "tensorrtllm"\ninstance_group [ { count: 1, kind: KIND_CPU } ]\n'
        'parameters: { key: "max_tokens_in_paged_kv_cache" value: { string_value: "16384" } }\n'
    )
    repo = _write(
        tmp_path / "repo",
        {
            "tensorrt_llm/config.pbtxt": trtllm,
            "guard/config.pbtxt": 'backend: "pytorch"\ninstance_group [ { count: 1, kind: KIND_GPU } ]\n',
            "gpuadmit.yaml": "gpus: [{id: gpu0, product: H100}]\ntriton: {repository: .}\n"
            "models: [{name: tensorrt_llm, gpu_gb: 30}, {name: guard, gpu_gb: 4}]\n",
        },
    )
    assert models(repo)["tensorrt_llm"].kv_cache_tokens == 16384
    assert not only(judge(repo), "greedy-allocator")


# --- facts -------------------------------------------------------------------------------


def test_sglang_default_fraction_follows_its_formula() -> None:
    # server_args.py `_handle_gpu_memory_settings`: H100 80 GB (81559 MiB), TP 1
    assert sglang_default_fraction(81559, 1) == 0.835
    assert sglang_default_fraction(23034, 1) == 0.837  # L4
    assert sglang_default_fraction(143771, 1) == 0.907  # H200


def test_sglang_at_default_takes_its_computed_fraction() -> None:
    plan = ServingPlan.model_validate(
        {"gpus": [{"id": "gpu0", "memory_gb": 81559 / 1024}], "models": [{"name": "s", "framework": "sglang", "gpu": "gpu0"}]}
    )
    gpu = _gpu(plan)
    assert gpu["greedy_gb"] == pytest.approx(0.835 * 81559 / 1024)
    assert gpu["greedy_fraction_sum"] == 0.0  # of the memory free at start, not claimed up front


@pytest.mark.parametrize(("version", "fraction"), [("v0.6.3", 0.9), ("0.5.4", 0.9), ("v0.11.0", 0.92), (None, 0.92)])
def test_vllm_default_fraction_by_version(version: str | None, fraction: float) -> None:
    plan = ServingPlan.model_validate(
        {
            "gpus": [{"id": "gpu0", "memory_gb": 80}],
            "models": [{"name": "v", "framework": "vllm", "gpu": "gpu0", "framework_version": version}],
        }
    )
    assert _gpu(plan)["greedy_gb"] == pytest.approx(fraction * 80)


def test_vllm_weights_above_its_fraction_cannot_start() -> None:
    plan = ServingPlan.model_validate(
        {
            "gpus": [{"id": "gpu0", "product": "L4"}],
            "models": [{"name": "chat", "framework": "vllm", "gpu": "gpu0", "gpu_gb": 16, "memory_fraction": 0.5}],
        }
    )
    (cannot,) = _gpu(plan)["greedy_cannot_start"]
    assert cannot.startswith("chat (16.0 GiB > vllm gpu_memory_utilization 0.5 ×")


def test_vllm_kv_cache_memory_fixes_the_footprint() -> None:
    plan = ServingPlan.model_validate(
        {
            "gpus": [{"id": "gpu0", "memory_gb": 80}],
            "models": [
                {"name": "a", "framework": "vllm", "gpu": "gpu0", "gpu_gb": 16, "kv_cache_gb": 8},
                {"name": "b", "framework": "pytorch", "gpu": "gpu0", "gpu_gb": 4},
            ],
        }
    )
    gpu = _gpu(plan)
    assert (gpu["greedy_gb"], gpu["greedy_default"], gpu["greedy_fraction_sum"]) == (8.0, [], 0.0)

"""Memory accounting: instances, CUDA contexts and greedy allocators, in GiB."""

from __future__ import annotations

import datetime as dt

import pytest

from policy.facts import build_facts
from policy.settings import Accounting
from policy.plan import ServingPlan


def _gpu(plan: dict, gpu_id: str = "gpu0", accounting: Accounting | None = None) -> dict:  # type: ignore[type-arg]
    facts = build_facts(ServingPlan.model_validate(plan), accounting)
    return next(g for g in facts.gpus if g["id"] == gpu_id)


def test_instances_and_contexts_count_on_every_gpu_of_a_model() -> None:
    plan = {
        "gpus": [{"id": "gpu0", "memory_gb": 80}, {"id": "gpu1", "memory_gb": 80}],
        "models": [{"name": "tp", "gpus": ["gpu0", "gpu1"], "gpu_gb": 20, "instances": 2}],
    }
    for gpu_id in ("gpu0", "gpu1"):
        gpu = _gpu(plan, gpu_id)
        assert gpu["declared_gb"] == 40
        assert gpu["context_gb"] == 1.0
        assert gpu["committed_gb"] == 41.0


def test_context_size_is_configurable() -> None:
    plan = {"gpus": [{"id": "gpu0", "memory_gb": 24}], "models": [{"name": "a", "gpu": "gpu0", "gpu_gb": 2, "instances": 3}]}
    assert _gpu(plan, accounting=Accounting(cuda_context_gb=0.8))["committed_gb"] == pytest.approx(6 + 2.4)


def test_vllm_takes_its_fraction_of_total_memory() -> None:
    plan = {
        "gpus": [{"id": "gpu0", "memory_gb": 80}],
        "models": [{"name": "v", "framework": "vllm", "gpu": "gpu0", "gpu_gb": 16}],
    }
    gpu = _gpu(plan)
    assert gpu["greedy_gb"] == pytest.approx(0.92 * 80 - 16)  # the current default (docs/SOURCES.md)
    assert gpu["committed_gb"] == pytest.approx(73.6 + 0.5)
    plan["models"][0]["memory_fraction"] = 0.5
    assert _gpu(plan)["committed_gb"] == pytest.approx(40 + 0.5)


def test_trtllm_takes_its_fraction_of_memory_free_after_weights() -> None:
    plan = {
        "gpus": [{"id": "gpu0", "memory_gb": 80}],
        "models": [{"name": "t", "framework": "trtllm", "gpu": "gpu0", "gpu_gb": 20, "memory_fraction": 0.5}],
    }
    gpu = _gpu(plan)
    assert gpu["greedy_gb"] == pytest.approx(0.5 * (80 - 20 - 0.5))
    assert gpu["greedy_models"] == ["t"]


def test_tensorflow_without_a_fraction_takes_the_whole_gpu() -> None:
    plan = {
        "gpus": [{"id": "gpu0", "product": "T4"}],
        "models": [{"name": "tf", "framework": "tensorflow", "gpu": "gpu0", "gpu_gb": 2}],
    }
    gpu = _gpu(plan)
    assert gpu["capacity_gb"] == pytest.approx(15360 / 1024)
    assert gpu["declared_gb"] + gpu["greedy_gb"] == pytest.approx(gpu["capacity_gb"])
    assert gpu["greedy_default"] == ["tf"]


def test_onnxruntime_arena_is_capped_by_its_limit() -> None:
    plan = {
        "gpus": [{"id": "gpu0", "memory_gb": 24}],
        "models": [{"name": "o", "framework": "onnx", "gpu": "gpu0", "gpu_gb": 1, "memory_limit_gb": 4}],
    }
    gpu = _gpu(plan)
    assert gpu["greedy_gb"] == 3
    assert gpu["greedy_default"] == []


def test_mig_slices_are_capacity_units_of_their_profile() -> None:
    plan = {
        "gpus": [{"id": "gpu0", "product": "A100-80GB", "sharing": "mig", "mig": ["3g.40gb", "1g.10gb"]}],
        "models": [{"name": "a", "gpu": "gpu0:1", "gpu_gb": 4}],
    }
    slice_ = _gpu(plan, "gpu0:1")
    # A 1g.10gb of an A100 80GB holds 9.5 GiB as NVML reports it, not the 10 in its name.
    assert slice_["capacity_gb"] == 9.5 and slice_["kind"] == "mig-slice" and slice_["models"] == ["a"]
    parent = _gpu(plan, "gpu0")
    assert parent["mig_compute_used"] == 4 and parent["n_models"] == 0


def test_product_aliases_resolve_to_nvml_capacity() -> None:
    for alias in ("H100", "H100-SXM-80GB", "NVIDIA H100 80GB HBM3", "NVIDIA-H100-80GB-HBM3"):
        plan = {"gpus": [{"id": "gpu0", "product": alias}], "models": []}
        assert _gpu(plan)["capacity_gb"] == pytest.approx(81559 / 1024), alias


def test_unset_priority_counts_as_the_highest() -> None:
    plan = {
        "gpus": [{"id": "gpu0", "memory_gb": 80}],
        "models": [
            {"name": "chat", "gpu": "gpu0", "gpu_gb": 1, "latency_critical": True, "priority": 0},
            {"name": "bulk", "gpu": "gpu0", "gpu_gb": 1},
        ],
    }
    facts = build_facts(ServingPlan.model_validate(plan))
    chat = facts.models[0]
    assert chat["priority"] == 1 and chat["best_server_bulk_priority"] == 1 and chat["server_bulk"] == ["bulk"]


def test_waiver_expiry_is_judged_against_today() -> None:
    plan = ServingPlan.model_validate(
        {"gpus": [], "models": [], "waivers": [{"rule": "x", "model": "m", "reason": "r", "expires": "2026-01-10"}]}
    )
    assert build_facts(plan, today=dt.date(2026, 1, 10)).waivers[0]["expired"] is False
    late = build_facts(plan, today=dt.date(2026, 1, 12)).waivers[0]
    assert late["expired"] is True and late["days_expired"] == 2

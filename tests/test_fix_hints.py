"""Fix hints for the memory, capacity and isolation rules: in the input's own words (the
engine flag or annotation for Kubernetes, the config.pbtxt parameter or gpuadmit.yaml for
Triton) and with the real numbers (79.6 GiB for an H100, not 80)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from policy.api import Linter

RULES = Path(__file__).parent / "rules"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture(scope="module")
def linter() -> Linter:
    return Linter()


def _findings(linter: Linter, path: Path, rule: str) -> list[tuple[str, str]]:
    return [(f.message, f.fix or "") for f in linter.lint_paths([path]).findings if f.rule == rule]


def _deployment(name: str, selector: str, args: str = "", annotations: str = "{}", image: str = "vllm/vllm-openai:v0.8.0") -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, annotations: {annotations}}}\n"
        f"spec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n"
        f"    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      nodeSelector: {selector}\n"
        f"      containers:\n        - name: c\n          image: {image}\n"
        f"          args: [{args}]\n          resources: {{limits: {{nvidia.com/gpu: 1}}}}\n---\n"
    )


SHARED_H100 = "{nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3-SHARED}"


def test_a_greedy_hint_uses_the_gpus_real_capacity_not_the_name(linter: Linter, tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        "gpus: [{id: gpu0, product: H100}]\nmodels:\n"
        "  - {name: chat, framework: sglang, gpu: gpu0}\n  - {name: rerank, framework: pytorch, gpu: gpu0, gpu_gb: 2}\n",
        encoding="utf-8",
    )
    ((_, fix),) = _findings(linter, path, "greedy-allocator")
    assert "× 79.6 GiB is taken at start" in fix and "80 GiB" not in fix


def test_a_greedy_hint_without_capacity_names_no_capacity(linter: Linter) -> None:
    ((_, fix),) = _findings(linter, RULES / "greedy-allocator" / "fail-three-vllm-no-capacity.yaml", "greedy-allocator")
    assert "0 GiB" not in fix and "adding up to 1 at most" in fix


def test_an_overflow_in_kubernetes_names_the_engine_flag_and_the_node_selector(linter: Linter, tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(
        _deployment("chat", SHARED_H100, "--gpu-memory-utilization, '0.6'")
        + _deployment("code", SHARED_H100, "--gpu-memory-utilization, '0.6'"),
        encoding="utf-8",
    )
    ((message, fix),) = _findings(linter, path, "memory-fit")
    assert "chat (vllm gpu_memory_utilization 0.6 × 79.6 GiB = 47.8 GiB)" in message
    assert "`--gpu-memory-utilization`, a fraction of 79.6 GiB" in fix and "`nvidia.com/gpu.product`" in fix


def test_an_overflow_in_triton_names_the_config_parameters(linter: Linter, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLES / "triton", repo)
    config = repo / "chat-llm" / "config.pbtxt"
    config.write_text(
        "".join(line for line in config.read_text().splitlines(keepends=True) if "kv_cache_free_gpu_mem_fraction" not in line)
    )
    ((message, fix),) = _findings(linter, repo, "memory-fit")
    # TensorRT-LLM's fraction is of the memory free after its weights: said with the numbers.
    assert "kv_cache_free_gpu_mem_fraction 0.9 (default) of the 63.1 GiB free after its 16.0 GiB weights = 56.8 GiB" in message
    assert "`instance_group { count }` in config.pbtxt" in fix
    assert "`kv_cache_free_gpu_mem_fraction`, of the memory free after its weights" in fix
    assert "gpuadmit.yaml" in fix


def test_a_tight_gpu_in_kubernetes_names_the_engine_flag(linter: Linter, tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(
        _deployment("chat", SHARED_H100, "--gpu-memory-utilization, '0.72'")
        + _deployment("embed", SHARED_H100, "", annotations="{gpuadmit.dev/gpu-gb: '10'}", image="embedder:1"),
        encoding="utf-8",
    )
    ((message, fix),) = _findings(linter, path, "memory-headroom")
    assert "of 79.6 GiB committed" in message
    assert "`--gpu-memory-utilization` (a fraction of 79.6 GiB)" in fix


def test_unknown_memory_in_kubernetes_names_the_annotation(linter: Linter) -> None:
    path = RULES / "memory-declared" / "fail-torchserve-replicas-time-sliced.yaml"
    fixes = {fix for _, fix in _findings(linter, path, "memory-declared")}
    assert fixes and all("`gpuadmit.dev/gpu-gb:" in fix and "nvidia.com/gpumem" in fix for fix in fixes)


def test_an_unknown_product_in_kubernetes_names_both_node_labels(linter: Linter) -> None:
    ((_, fix),) = _findings(linter, RULES / "capacity-known" / "fail-node-selector-typo.yaml", "capacity-known")
    assert "`nvidia.com/gpu.product`" in fix and "`cloud.google.com/gke-accelerator`" in fix


def test_mps_warnings_name_the_pinned_memory_limit_and_a_mig_slice(linter: Linter) -> None:
    messages = [m for m, _ in _findings(linter, RULES / "isolation" / "fail-mps-fault-domain.yaml", "isolation")]
    assert any("set CUDA_MPS_PINNED_DEVICE_MEM_LIMIT in their env (`0=8G`" in m for m in messages)
    assert any(
        "a MIG slice of its own (`nvidia.com/mig-<profile>`) or another GPU is a separate fault domain" in m for m in messages
    )

"""Settings that change how plans are judged, read from the project config.

At the bottom of the import graph beside policy.findings: the config reader and the
fact builder both use them, and neither depends on the other.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Accounting(BaseModel):
    """How memory is counted. Set in the project config under `accounting:`."""

    model_config = ConfigDict(extra="forbid")

    cuda_context_gb: float = Field(
        0.5,
        ge=0,
        le=8,
        description="Memory each CUDA process holds before any model memory (typically 0.3-0.8 GiB).",
    )
    headroom_pct: float = Field(
        5.0, ge=0, lt=100, description="Share of each GPU kept free for fragmentation and activation spikes."
    )
    vllm_default_fraction: float = Field(
        0.92, gt=0, le=1, description="vLLM gpu_memory_utilization when unset (current releases; docs/SOURCES.md)."
    )
    vllm_legacy_default_fraction: float = Field(
        0.9, gt=0, le=1, description="vLLM gpu_memory_utilization when unset, in releases up to `vllm_legacy_until`."
    )
    vllm_legacy_until: str = Field(
        "0.6.4", pattern=r"^\d+(\.\d+)*$", description="Last vLLM release known to default to the legacy fraction."
    )
    tensorrt_llm_default_fraction: float = Field(
        0.9, gt=0, le=1, description="TensorRT-LLM kv_cache_free_gpu_mem_fraction when unset."
    )
    sglang_default_fraction: float = Field(
        0.88,
        gt=0,
        le=1,
        description=(
            "SGLang mem_fraction_static when unset and the GPU's memory is unknown; with it known, SGLang's own "
            "formula from GPU memory and tensor parallelism is used."
        ),
    )

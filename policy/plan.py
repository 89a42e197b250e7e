"""The serving plan: the one shape every reader produces and the engine judges.

Field names are the user-facing contract (see the README); the JSON Schema users get
in their editor (`gpuadmit schema`) and the CRD's OpenAPI schema are generated from
these models. All memory is GiB (2**30 bytes).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from typing_extensions import TypedDict

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

API_VERSION: Literal["gpuadmit.dev/v1alpha1"] = "gpuadmit.dev/v1alpha1"

#: Upper bounds that catch typos (800 for 80) without limiting real fleets.
MAX_GPU_GB = 4096.0
MAX_INSTANCES = 1024
MAX_MS = 3_600_000.0

#: Bounds on the size of a plan, so memory and time stay bounded whatever a file holds
#: (docs/RELIABILITY.md has the measured cost): each is refused beyond with a one-line error.
#: A plan's facts take about 10 KiB per model and 5 KiB per GPU.
MAX_MODELS = 50_000
MAX_GPUS = 20_000
#: Models placed on one GPU or MIG slice (a model placed there twice counts twice).
MAX_MODELS_PER_GPU = 10_000
MAX_WAIVERS = 10_000
#: Names and ids: a Kubernetes object name (DNS subdomain) is at most 253 characters; a
#: MIG slice `<gpu id>:<n>` may add three.
MAX_NAME = 253
MAX_TARGET = MAX_NAME + 3
MAX_TEXT = 4096  # free text: a waiver's reason
#: MIG profiles: `<compute slices>g.<memory GiB>gb`. NVIDIA's largest GPU has 8 compute
#: slices and well under 4096 GiB; two and four digits leave room and keep every number
#: far from int64 (a 5,000-digit profile once reached the engine).
MAX_MIG_COMPUTE = 99
MIG_PROFILE_PATTERN = r"^[1-9][0-9]?g\.[1-9][0-9]{0,3}gb([+-](me|gfx)(\.all)?)?$"

Sharing = Literal["exclusive", "time-slicing", "mps", "mig"]

#: Spellings users and tools write, mapped to one framework name.
FRAMEWORK_ALIASES = {
    "trtllm": "tensorrt_llm",
    "tensorrtllm": "tensorrt_llm",
    "tensorrt-llm": "tensorrt_llm",
    "trt-llm": "tensorrt_llm",
    "tensorrt": "tensorrt",
    "tensorrt_plan": "tensorrt",
    "torch": "pytorch",
    "pytorch_libtorch": "pytorch",
    "libtorch": "pytorch",
    "onnx": "onnxruntime",
    "onnxruntime_onnx": "onnxruntime",
    "onnx-runtime": "onnxruntime",
    "tf": "tensorflow",
    "tensorflow_graphdef": "tensorflow",
    "tensorflow_savedmodel": "tensorflow",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


#: Settings blocks nested in every model are validated into plain dicts (TypedDicts), not
#: model instances: same schema, same errors, a third of the cost of a review's validation.
_BLOCK_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)


class RateLimit(TypedDict, total=False):
    """How much traffic reaches the model and how long it may wait. Every key may be left out."""

    __pydantic_config__ = _BLOCK_CONFIG  # type: ignore[misc]

    max_rps: Annotated[float | None, Field(gt=0, le=1e7, description="Requests per second admitted.")]
    max_concurrency: Annotated[int | None, Field(gt=0, le=1_000_000, description="Requests executing at once.")]
    max_queue: Annotated[
        int | None,
        Field(ge=0, le=100_000_000, description="Requests allowed to wait; 0 means unbounded (Triton's convention)."),
    ]
    queue_timeout_ms: Annotated[
        float | None,
        Field(ge=0, le=MAX_MS, description="How long a request may wait in the queue before it is rejected."),
    ]
    timeout_action: Annotated[
        Literal["reject", "delay"] | None,
        Field(description="What happens at the queue timeout; `delay` may wait forever (Triton's DELAY)."),
    ]
    enabled: Annotated[
        bool,
        Field(
            description=(
                "False when the server ignores this limit (tritonserver without --rate-limit=execution_count). Default true."
            )
        ),
    ]


class Caps(TypedDict, total=False):
    """Limits that keep a bulk model from taking the whole GPU. Every key may be left out."""

    __pydantic_config__ = _BLOCK_CONFIG  # type: ignore[misc]

    max_batch_size: Annotated[int | None, Field(gt=0, le=1_000_000, description="Largest batch the model runs.")]
    compute_pct: Annotated[
        float | None,
        Field(
            gt=0,
            le=100,
            description=(
                "Most of the GPU's compute this model may use (MPS CUDA_MPS_ACTIVE_THREAD_PERCENTAGE, HAMi gpucores): "
                "a limit, not a reservation."
            ),
        ),
    ]
    pinned_memory_gb: Annotated[
        float | None,
        Field(
            gt=0,
            le=MAX_GPU_GB,
            description="GiB of device memory this MPS client may allocate (CUDA_MPS_PINNED_DEVICE_MEM_LIMIT).",
        ),
    ]


class Gpu(_Strict):
    """One physical GPU (or a GPU-sized share of one)."""

    id: str = Field(min_length=1, max_length=MAX_NAME, description="Name models use in `gpu`/`gpus`.")
    product: str | None = Field(
        None, max_length=MAX_NAME, description="Looked up in the GPU catalog (`H100`, `NVIDIA A100-SXM4-80GB`, ...)."
    )
    memory_gb: float | None = Field(None, gt=0, le=MAX_GPU_GB, description="Total memory in GiB; overrides the catalog.")
    sharing: Sharing = Field("time-slicing", description="How models on this GPU share it.")
    mig: list[Annotated[str, Field(json_schema_extra={"pattern": MIG_PROFILE_PATTERN, "maxLength": 20})]] | None = Field(
        None, max_length=7, description="MIG profiles carved on this GPU (with `sharing: mig`); slices are `ID:0`, `ID:1`, ..."
    )
    index: int | None = Field(None, ge=0, le=1024, description="Device index, to match real capacity.")
    uuid: str | None = Field(None, max_length=MAX_NAME, description="Device UUID (`GPU-...`), to match real capacity.")

    @field_validator("mig")
    @classmethod
    def _profiles_look_like_mig(cls, profiles: list[str] | None) -> list[str] | None:
        for profile in profiles or []:
            if not _is_mig_profile(profile):
                shown = profile if len(profile) <= 24 else f"{profile[:20]}…({len(profile):,} characters)"
                raise ValueError(
                    f"{shown!r} is not a MIG profile such as 3g.40gb (1-{MAX_MIG_COMPUTE} compute slices, 1-{MAX_GPU_GB:g} GiB)"
                )
        return profiles


class Model(_Strict):
    """One served model and how it is protected."""

    name: str = Field(min_length=1, max_length=MAX_NAME)
    framework: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True)] = Field(
        "unknown",
        max_length=64,
        description="tensorrt_llm | vllm | sglang | pytorch | onnxruntime | tensorflow | python | ...",
    )
    gpu: str | None = Field(None, max_length=MAX_TARGET, description="The GPU (or MIG slice `gpu0:1`) the model runs on.")
    gpus: list[Annotated[str, Field(max_length=MAX_TARGET)]] | None = Field(
        None, max_length=1024, description="Several GPUs (tensor parallel)."
    )
    instances: int = Field(1, ge=0, le=MAX_INSTANCES, description="Instances on each GPU the model is placed on.")
    instances_min: int | None = Field(
        None, ge=0, le=MAX_INSTANCES, description="Fewest instances `gpuadmit suggest` may give it (default: 1)."
    )
    instances_max: int | None = Field(
        None, ge=0, le=MAX_INSTANCES, description="Most instances `gpuadmit suggest` may give it (default: `instances`)."
    )
    pinned: bool = Field(False, description="`gpuadmit suggest --move` never moves it to another GPU.")
    throughput_rps: float | None = Field(
        None, gt=0, le=1e7, description="Requests per second one instance serves (measured, e.g. with perf_analyzer)."
    )
    expected_rps: float | None = Field(
        None, ge=0, le=1e9, description="Requests per second expected; with throughput_rps, suggest maximizes load served."
    )
    gpu_gb: float | None = Field(
        None, ge=0, le=MAX_GPU_GB, description="GiB per instance on each of its GPUs (tensor parallel: the per-GPU share)."
    )
    gpu_gb_estimated: bool = Field(False, description="True when gpu_gb was estimated from model files, not declared.")
    latency_critical: bool = False
    sla_ms: float | None = Field(None, gt=0, le=MAX_MS, description="Latency target in milliseconds.")
    service_ms: float | None = Field(
        None,
        gt=0,
        le=MAX_MS,
        description=(
            "Time one request takes to compute once it leaves the queue (its p99), in milliseconds; "
            "the queue timeout plus this must fit in sla_ms."
        ),
    )
    priority: int | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description=(
            "Precedence the serving process gives this model over the other models it serves: 1 is the highest "
            "(Triton's convention), 0 counts as 1. It arbitrates only inside one `server`."
        ),
    )
    priority_levels: int | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description=(
            "Triton dynamic_batching priority_levels: requests of this model are queued strictly by level; "
            "the queue in `rate_limit` is the default level's."
        ),
    )
    rate_limit: RateLimit | None = None
    caps: Caps | None = None
    memory_fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        description=(
            "Fraction a greedy framework pre-allocates: vLLM gpu_memory_utilization (of total), "
            "TensorRT-LLM kv_cache_free_gpu_mem_fraction (of free memory after weights), "
            "SGLang mem_fraction_static, TensorFlow per_process_gpu_memory_fraction; with "
            "memory_limit_enforced, the share of the device the limit allows (HAMi gpumem-percentage)."
        ),
    )
    memory_limit_gb: float | None = Field(
        None, gt=0, le=MAX_GPU_GB, description="Hard cap on the framework's allocator (ONNX Runtime gpu_mem_limit)."
    )
    server: str | None = Field(
        None,
        max_length=253,
        description=(
            "The serving process the model runs in. Priorities and rate limits arbitrate only "
            "inside one process; models of a plan share one server unless told otherwise."
        ),
    )
    # How the framework holds memory, as readers find it in engine flags and configs.
    instances_share_process: bool | None = Field(
        None,
        description=(
            "True when the instances run inside one process (Triton model instances) and so share its one CUDA "
            "context per GPU with every model of the same `server`; false when each instance is a process of its "
            "own (Kubernetes replicas). Default: true when `server` is set."
        ),
    )
    framework_version: str | None = Field(
        None,
        max_length=64,
        description="The framework's version (from an image tag such as vllm/vllm-openai:v0.6.3); picks version-dependent defaults.",
    )
    kv_cache_gb: float | None = Field(
        None,
        gt=0,
        le=MAX_GPU_GB,
        description=(
            "A KV cache of fixed size in GiB per GPU (vLLM --kv-cache-memory): the framework then ignores its "
            "memory fraction and holds weights (gpu_gb) + this."
        ),
    )
    kv_cache_tokens: int | None = Field(
        None,
        gt=0,
        le=1_000_000_000,
        description=(
            "TensorRT-LLM max_tokens_in_paged_kv_cache: bounds the KV cache below its fraction, so the fraction "
            "is no longer the only bound; with gpu_gb given, gpu_gb is taken as the whole footprint."
        ),
    )
    memory_growth: bool | None = Field(
        None,
        description=(
            "True when the framework grows its memory on demand instead of mapping it at start (TensorFlow inside "
            "Triton without gpu-memory-fraction); a growing allocator reserves nothing beyond gpu_gb."
        ),
    )
    memory_limit_enforced: bool = Field(
        False,
        description=(
            "True when memory_limit_gb is enforced from outside the process, contexts included (HAMi gpumem): the "
            "limits are judged against the device as they are, without contexts and headroom on top."
        ),
    )

    @model_validator(mode="after")
    def _placed_one_way_framework_canonical(self) -> Model:
        """One validator, not two: each is a call from pydantic-core into Python per model."""
        if self.gpu is not None and self.gpus is not None:
            raise ValueError("give either `gpu` or `gpus`, not both")
        if self.instances_min is not None and self.instances_max is not None and self.instances_min > self.instances_max:
            raise ValueError(f"instances_min {self.instances_min} is above instances_max {self.instances_max}")
        canonical = FRAMEWORK_ALIASES.get(self.framework)  # already stripped and lower-cased
        if canonical is not None:
            self.framework = canonical
        return self

    @property
    def placed_on(self) -> list[str]:
        if self.gpus is not None:
            return list(self.gpus)
        return [self.gpu] if self.gpu is not None else []


class Waiver(_Strict):
    """An accepted exception: exact rule id and subject, with a reason and usually an expiry."""

    rule: str = Field(min_length=1, max_length=MAX_NAME)
    model: str | None = Field(None, max_length=MAX_NAME)
    gpu: str | None = Field(None, max_length=MAX_TARGET)
    reason: str = Field(min_length=1, max_length=MAX_TEXT, description="Why the risk is accepted; required.")
    expires: dt.date | None = Field(None, description="After this date the waiver is an error, not a pass.")

    @model_validator(mode="after")
    def _names_a_subject(self) -> Waiver:
        if self.model is None and self.gpu is None:
            raise ValueError("a waiver names the `model` or `gpu` it applies to")
        if not self.reason.strip():
            raise ValueError("a waiver needs a non-empty reason")
        return self


class TritonServer(_Strict):
    """One tritonserver process and its model repository, read as plain models.

    A Triton config cannot say how much memory a model needs, whether it is
    latency-critical, which GPUs the server sees or how the server is started; this
    section and the plan's `models` entries (matched by model name) say it.
    """

    repository: str = Field(
        ".", min_length=1, description="Model repository folder (`<model>/config.pbtxt`), relative to the plan file."
    )
    server: str | None = Field(
        None, max_length=253, description="Name of the tritonserver process; default `triton-<repository folder>`."
    )
    args: list[str] | None = Field(
        None,
        max_length=1000,
        description=(
            "How tritonserver is started (its flags). `--rate-limit=execution_count` switches rate limiters on; "
            "given without it, every `rate_limiter` is ignored. Unset: not known."
        ),
    )
    gpus: list[str] | None = Field(
        None,
        max_length=1024,
        description="The plan GPUs the server sees, in device-index order (Triton GPU 0 first); default: every GPU.",
    )


class UnjudgedObject(_Strict):
    """An object of the input that holds GPUs but whose fields gpuadmit does not read."""

    kind: str = Field(min_length=1, max_length=MAX_NAME)
    name: str = Field("", max_length=MAX_NAME)


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field("plan", max_length=MAX_NAME)


class ServingPlan(_Strict):
    """GPUs, the models placed on them, and accepted exceptions."""

    apiVersion: Literal["gpuadmit.dev/v1alpha1"] = API_VERSION
    kind: Literal["ServingPlan"] = "ServingPlan"
    metadata: Metadata = Field(default_factory=Metadata)
    gpus: list[Gpu] = Field(default_factory=list, max_length=MAX_GPUS, fail_fast=True)
    models: list[Model] = Field(default_factory=list, max_length=MAX_MODELS, fail_fast=True)
    waivers: list[Waiver] = Field(default_factory=list, max_length=MAX_WAIVERS, fail_fast=True)
    unjudged: list[UnjudgedObject] = Field(
        default_factory=list,
        max_length=MAX_WAIVERS,
        description="Objects of the input that hold GPUs but could not be judged (set by readers).",
    )
    triton: TritonServer | None = Field(
        None,
        description=(
            "A Triton model repository served on this plan's GPUs; its models join `models`, and `models` "
            "entries with the same name add what config.pbtxt cannot hold (gpu_gb, latency_critical, sla_ms)."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _seed_form(cls, data: Any) -> Any:
        """Accept the seed demo's data: a top-level `gpu_gb` (or `GPU_GB`) and `models`.

        All models then sit on one implicit GPU `gpu0` of that size.
        """
        if not isinstance(data, dict):
            return data
        size_key = "gpu_gb" if "gpu_gb" in data else "GPU_GB" if "GPU_GB" in data else None
        if size_key is None:
            return data
        if "gpus" in data:
            raise ValueError(f"give either a top-level `{size_key}` (one implicit GPU) or `gpus`, not both")
        converted = {k: v for k, v in data.items() if k != size_key}
        converted["gpus"] = [{"id": "gpu0", "memory_gb": data[size_key]}]
        models = data.get("models")
        if isinstance(models, list):
            converted["models"] = [
                {**m, "gpu": "gpu0"} if isinstance(m, dict) and "gpu" not in m and "gpus" not in m else m for m in models
            ]
        return converted

    @model_validator(mode="after")
    def _names_unique_and_whole(self) -> ServingPlan:
        gpu_ids, model_names = [g.id for g in self.gpus], [m.name for m in self.models]
        for kind, names in (("GPU id", gpu_ids), ("model name", model_names)):
            if len(set(names)) == len(names):
                continue
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"{kind} {name!r} is used twice")
                seen.add(name)
        placements: dict[str, int] = {}
        for m in self.models:  # `m.placed_on`, written out: this runs for every model of every plan
            if m.gpus is not None:
                for target in m.gpus:
                    placements[target] = placements.get(target, 0) + 1
            elif m.gpu is not None:
                placements[m.gpu] = placements.get(m.gpu, 0) + 1
        if placements and max(placements.values()) > MAX_MODELS_PER_GPU:
            crowded = max(placements.items(), key=lambda item: item[1])
            raise ValueError(
                f"{crowded[1]:,} models are placed on {crowded[0]!r}; gpuadmit judges at most "
                f"{MAX_MODELS_PER_GPU:,} on one GPU or MIG slice"
            )
        # The rule engine's C++ evaluator reads a string only up to a NUL character, so a
        # name holding one would be judged as a shorter name: such names are refused.
        targets = [m.gpu or "" for m in self.models] + [t for m in self.models if m.gpus for t in m.gpus]
        waivers = [f"{w.rule}{w.model or ''}{w.gpu or ''}" for w in self.waivers]
        if "\x00" in "".join([*gpu_ids, *model_names, *targets, *waivers]):
            bad = next(n for n in [*gpu_ids, *model_names, *targets, *waivers] if "\x00" in n)
            raise ValueError(f"{bad!r} holds a NUL character; names, GPU ids and waivers cannot")
        return self


_MIG_PROFILE = re.compile(MIG_PROFILE_PATTERN)


def _is_mig_profile(profile: str) -> bool:
    """`3g.40gb` and its kin, with bounded ASCII numbers: 1-99 compute slices, 1-4096 GiB, and the
    media-extension and graphics variants NVIDIA names `1g.10gb+me`, `1g.24gb+gfx`, `1g.24gb+me.all`."""
    if not _MIG_PROFILE.fullmatch(profile):
        return False
    return float(profile.partition(".")[2].partition("gb")[0]) <= MAX_GPU_GB


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a plan file, as users get it in their editor."""
    schema = ServingPlan.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "gpuadmit ServingPlan"
    return schema

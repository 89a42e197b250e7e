"""Facts: everything the rules need, computed once per plan in plain Python.

Rules are predicates over these facts, so all arithmetic that involves framework
behaviour (greedy allocators, CUDA contexts, MIG slices) lives here, where it can be
read, tested and documented, and never inside a rule expression. Facts are plain
dicts of str/int/float/bool/list so the expression engine converts them cheaply.

Units: GiB (2**30 bytes) everywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from . import catalog
from .capacity.match import PlanCapacity, RealUnit, match_plan
from .plan import Gpu, Model, ServingPlan

if TYPE_CHECKING:
    from .capacity.inventory import Inventory

Fact = dict[str, Any]


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
    vllm_default_fraction: float = Field(0.9, gt=0, le=1, description="vLLM gpu_memory_utilization when unset.")
    tensorrt_llm_default_fraction: float = Field(
        0.9, gt=0, le=1, description="TensorRT-LLM kv_cache_free_gpu_mem_fraction when unset."
    )
    sglang_default_fraction: float = Field(0.9, gt=0, le=1, description="SGLang mem_fraction_static when unset.")


@dataclass(frozen=True)
class Allocator:
    """How a framework grabs GPU memory beyond its weights."""

    setting: str  # the knob users set, named as the framework names it
    basis: str  # "total": fraction of total memory; "free": of memory left after weights; "arena": grows, capped by a limit
    default_fraction: float | None  # None: no preallocation by default (arena) or the whole GPU (TensorFlow)


def _allocators(acc: Accounting) -> dict[str, Allocator]:
    return {
        "vllm": Allocator("gpu_memory_utilization", "total", acc.vllm_default_fraction),
        "sglang": Allocator("mem_fraction_static", "total", acc.sglang_default_fraction),
        "tensorrt_llm": Allocator("kv_cache_free_gpu_mem_fraction", "free", acc.tensorrt_llm_default_fraction),
        "tensorflow": Allocator("per_process_gpu_memory_fraction", "total", 1.0),
        "onnxruntime": Allocator("gpu_mem_limit", "arena", None),
    }


@dataclass
class CapacityUnit:
    """A GPU or a MIG slice: the thing that has memory and hosts model instances."""

    id: str
    parent: str
    kind: str  # "gpu" | "mig-slice"
    gpu: Gpu
    product: catalog.Product | None
    capacity_gb: float | None
    sharing: str
    models: list[Model] = field(default_factory=list)
    #: What the plan says, before real capacity (when verified) lowers `capacity_gb`.
    declared_capacity_gb: float | None = None
    #: What is really there (neutral under `--capacity declared`).
    real: RealUnit = field(default_factory=RealUnit)


@dataclass
class GpuSummary:
    """What writers show for one GPU or MIG slice: the memory bar and its parts."""

    id: str
    product: str
    sharing: str
    capacity_gb: float | None
    usable_gb: float | None
    committed_gb: float
    declared_gb: float
    context_gb: float
    greedy_gb: float
    models: list[tuple[str, float]]  # (name, GiB on this unit incl. greedy reservations)
    other_gb: float = 0.0  # held by processes outside the plan (real capacity only)


@dataclass
class Facts:
    """The evaluation context of one plan."""

    plan: Fact
    gpus: list[Fact]
    models: list[Fact]
    waivers: list[Fact]
    summaries: list[GpuSummary]

    def collections(self) -> dict[str, list[Fact]]:
        return {"gpus": self.gpus, "models": self.models, "waivers": self.waivers, "plans": [self.plan]}


def build_facts(
    plan: ServingPlan,
    accounting: Accounting | None = None,
    today: dt.date | None = None,
    inventory: Inventory | None = None,
    *,
    strict_capacity: bool = False,
) -> Facts:
    """The facts of one plan; with an `inventory`, checked against the GPUs really there."""
    acc = accounting or Accounting()
    today = today or dt.date.today()
    allocators = _allocators(acc)
    real = match_plan(plan, inventory) if inventory is not None else PlanCapacity()
    units = _capacity_units(plan, real)
    unit_by_id = {u.id: u for u in units}

    placements: dict[str, list[CapacityUnit]] = {}
    unknown_targets: dict[str, list[str]] = {}
    on_mig_parent: dict[str, list[str]] = {}
    for model in plan.models:
        placed: list[CapacityUnit] = []
        for target in model.placed_on:
            unit = unit_by_id.get(target)
            if unit is None:
                unknown_targets.setdefault(model.name, []).append(target)
            elif unit.sharing == "mig" and unit.kind == "gpu" and unit.gpu.mig:
                on_mig_parent.setdefault(model.name, []).append(target)
            else:
                placed.append(unit)
                unit.models.append(model)
        placements[model.name] = placed

    # Per (model, unit): GiB one instance takes beyond its CUDA context, greedy part split out.
    footprints: dict[tuple[str, str], tuple[float, float]] = {}
    for unit in units:
        for model in unit.models:
            footprints[(model.name, unit.id)] = _instance_memory(model, unit, allocators, acc)

    gpu_facts = [
        _gpu_fact(i, unit, footprints, allocators, acc) for i, unit in enumerate(units)
    ]
    summaries = [_summary(unit, fact, footprints, acc) for unit, fact in zip(units, gpu_facts)]
    model_facts = [
        _model_fact(
            i,
            model,
            placements[model.name],
            unknown_targets.get(model.name, []),
            on_mig_parent.get(model.name, []),
            footprints,
            allocators,
            acc,
        )
        for i, model in enumerate(plan.models)
    ]
    waiver_facts = [
        {
            "idx": i,
            "rule": w.rule,
            "model": w.model or "",
            "gpu": w.gpu or "",
            "reason": w.reason,
            "expires": w.expires.isoformat() if w.expires else "",
            "expired": bool(w.expires and w.expires < today),
            "days_expired": (today - w.expires).days if w.expires and w.expires < today else 0,
        }
        for i, w in enumerate(plan.waivers)
    ]
    plan_fact: Fact = {
        "idx": 0,
        "name": plan.metadata.name,
        "n_models": len(plan.models),
        "n_gpus": len(plan.gpus),
        "today": today.isoformat(),
        "cuda_context_gb": acc.cuda_context_gb,
        "headroom_pct": acc.headroom_pct,
        "capacity_source": real.source,
        "capacity_origin": real.origin,
        "capacity_host": real.host,
        "capacity_gpus": real.n_devices,
        "capacity_error": real.error,
        "strict_capacity": strict_capacity,
    }
    return Facts(plan_fact, gpu_facts, model_facts, waiver_facts, summaries)


def _capacity_units(plan: ServingPlan, real: PlanCapacity) -> list[CapacityUnit]:
    units: list[CapacityUnit] = []
    for gpu in plan.gpus:
        product = catalog.lookup(gpu.product)
        capacity = gpu.memory_gb if gpu.memory_gb is not None else (product.memory_gb if product else None)
        units.append(_unit(gpu.id, gpu.id, "gpu", gpu, product, capacity, gpu.sharing, real))
        if gpu.sharing == "mig":
            for n, profile in enumerate(gpu.mig or []):
                units.append(
                    _unit(
                        f"{gpu.id}:{n}", gpu.id, "mig-slice", gpu, product,
                        catalog.mig_profile_memory_gb(profile), "mig-slice", real,
                    )
                )
    return units


def _unit(
    unit_id: str,
    parent: str,
    kind: str,
    gpu: Gpu,
    product: catalog.Product | None,
    declared: float | None,
    sharing: str,
    real: PlanCapacity,
) -> CapacityUnit:
    """A unit whose capacity is what the plan declares, lowered to the real memory when verified."""
    found = real.units.get(unit_id, RealUnit())
    capacity = declared
    if found.verified and found.memory_gb is not None:
        capacity = found.memory_gb if declared is None else min(declared, found.memory_gb)
    unit = CapacityUnit(unit_id, parent, kind, gpu, product, capacity, sharing)
    unit.declared_capacity_gb = declared
    unit.real = found
    return unit


def _instance_memory(
    model: Model, unit: CapacityUnit, allocators: dict[str, Allocator], acc: Accounting
) -> tuple[float, float]:
    """(declared GiB, extra GiB a greedy allocator reserves) for one instance on `unit`."""
    weights = model.gpu_gb or 0.0
    allocator = allocators.get(model.framework)
    capacity = unit.capacity_gb
    if allocator is None or capacity is None:
        return weights, 0.0
    if allocator.basis == "arena":
        limit = model.memory_limit_gb
        return weights, max(0.0, limit - weights) if limit is not None else 0.0
    fraction = model.memory_fraction if model.memory_fraction is not None else allocator.default_fraction
    fraction = 1.0 if fraction is None else fraction
    if allocator.basis == "total":
        return weights, max(0.0, fraction * capacity - weights)
    # "free": a fraction of what is left after its own weights and context, assuming it
    # loads first, which is the order that leaves the least for its neighbours.
    return weights, max(0.0, fraction * (capacity - weights - acc.cuda_context_gb))


def _fraction_of_total(model: Model, allocators: dict[str, Allocator]) -> float:
    """The fraction of total memory a model claims up front (0 when not of that kind)."""
    allocator = allocators.get(model.framework)
    if allocator is None or allocator.basis != "total":
        return 0.0
    fraction = model.memory_fraction if model.memory_fraction is not None else allocator.default_fraction
    return float(fraction or 0.0)


def _is_default_greedy(model: Model, allocators: dict[str, Allocator]) -> bool:
    allocator = allocators.get(model.framework)
    if allocator is None:
        return False
    if allocator.basis == "arena":
        return model.memory_limit_gb is None
    return model.memory_fraction is None


def _is_capped(model: Model) -> bool:
    caps, limit = model.caps, model.rate_limit
    return bool(
        (caps and (caps.max_batch_size is not None or caps.compute_pct is not None))
        or (limit and limit.enabled and (limit.max_rps is not None or limit.max_concurrency is not None))
    )


def _effective_priority(model: Model) -> int:
    """Triton's reading: unset and 0 both mean 1, the highest."""
    return max(model.priority or 1, 1)


def _gpu_fact(
    idx: int,
    unit: CapacityUnit,
    footprints: dict[tuple[str, str], tuple[float, float]],
    allocators: dict[str, Allocator],
    acc: Accounting,
) -> Fact:
    models = unit.models
    declared = sum(m.instances * footprints[(m.name, unit.id)][0] for m in models)
    greedy = sum(m.instances * footprints[(m.name, unit.id)][1] for m in models)
    processes = sum(m.instances for m in models)
    context = processes * acc.cuda_context_gb
    real = unit.real
    # Memory other processes already hold is not free for the plan: it counts as committed.
    committed = declared + greedy + context + real.processes_gb
    capacity = unit.capacity_gb or 0.0
    critical = [m for m in models if m.latency_critical]
    bulk = [m for m in models if not m.latency_critical]
    per_model_gb = {
        m.name: m.instances * (sum(footprints[(m.name, unit.id)]) + acc.cuda_context_gb) for m in models
    }
    largest = max(per_model_gb.items(), key=lambda kv: kv[1], default=("", 0.0))
    greedy_default = [m for m in models if _is_default_greedy(m, allocators)]
    greedy_models = [m for m in models if m.framework in allocators]
    compute = {m.name: m.caps.compute_pct for m in models if m.caps and m.caps.compute_pct is not None}
    servers_critical = {m.server or "" for m in critical}
    servers_bulk = {m.server or "" for m in bulk}

    product = unit.product
    mig_profiles = list(unit.gpu.mig or []) if unit.kind == "gpu" else []
    mig_table = product.mig if product else {}
    counts: dict[str, int] = {}
    for profile in mig_profiles:
        counts[profile] = counts.get(profile, 0) + 1
    return {
        "idx": idx,
        "id": unit.id,
        "gpu": unit.id,
        "parent": unit.parent,
        "kind": unit.kind,
        "product": product.name if product else (unit.gpu.product or ""),
        "product_known": product is not None,
        "declared_product": unit.gpu.product or "",
        "sharing": unit.sharing,
        "capacity_known": unit.capacity_gb is not None,
        "capacity_gb": capacity,
        "usable_gb": capacity * (1.0 - acc.headroom_pct / 100.0),
        "declared_gb": declared,
        "greedy_gb": greedy,
        "context_gb": context,
        "committed_gb": committed,
        "utilisation_pct": 100.0 * committed / capacity if capacity else 0.0,
        "n_models": len(models),
        "n_processes": processes,
        "models": [m.name for m in models],
        "critical": [m.name for m in critical],
        "bulk": [m.name for m in bulk],
        # Priorities arbitrate inside one serving process only; across processes the
        # GPU time-slices blindly unless MPS, MIG or compute caps step in.
        "servers_apart": bool(critical and bulk and len(servers_critical | servers_bulk) > 1),
        "bulk_without_compute_cap": [m.name for m in bulk if m.name not in compute],
        "bulk_uncapped": [m.name for m in bulk if not _is_capped(m)],
        "compute_pct_sum": float(sum(compute.values())),
        "critical_compute_pct_sum": float(sum(v for k, v in compute.items() if k in {m.name for m in critical})),
        "bulk_compute_pct_sum": float(sum(v for k, v in compute.items() if k in {m.name for m in bulk})),
        "critical_without_compute_pct": [m.name for m in critical if m.name not in compute],
        "largest_model": largest[0],
        "largest_gb": largest[1],
        "unknown_memory": [m.name for m in models if m.gpu_gb is None and not _footprint_known(m, allocators)],
        "greedy_models": [m.name for m in greedy_models],
        "greedy_default": [m.name for m in greedy_default],
        "greedy_default_detail": [
            _greedy_detail(m, unit, allocators[m.framework], footprints) for m in greedy_default
        ],
        "greedy_fraction_sum": sum(_fraction_of_total(m, allocators) * m.instances for m in models),
        "mig": mig_profiles,
        "mig_supported": bool(mig_table),
        "mig_unknown_profiles": [p for p in counts if p not in mig_table],
        "mig_over_limit": [
            f"{p} ×{n} (at most {mig_table[p]})" for p, n in counts.items() if p in mig_table and n > mig_table[p]
        ],
        "mig_compute_used": sum(catalog.mig_profile_compute_slices(p) for p in mig_profiles),
        "mig_compute_total": product.compute_slices if product else 7,
        "mig_memory_used_gb": sum(catalog.mig_profile_memory_gb(p) for p in mig_profiles),
        **_real_capacity_facts(unit),
    }


def _real_capacity_facts(unit: CapacityUnit) -> Fact:
    """What the real device says (neutral values under `--capacity declared`)."""
    real = unit.real
    return {
        "declared_capacity_gb": unit.declared_capacity_gb or 0.0,
        "verified": real.verified,
        "real_found": real.found,
        "real_device": real.device,
        "real_memory_known": real.memory_gb is not None,
        "real_memory_gb": real.memory_gb or 0.0,
        "real_product": real.product,
        "product_matches": real.product_matches,
        "real_mig_mode": real.mig_mode,
        "real_mig": real.mig,
        "real_mig_text": real.mig_text,
        "mig_matches": real.mig_matches,
        "other_processes_gb": real.processes_gb,
        "other_processes": real.processes,
        "capacity_note": real.note,
    }


def _greedy_detail(
    model: Model, unit: CapacityUnit, allocator: Allocator, footprints: dict[tuple[str, str], tuple[float, float]]
) -> str:
    weights, extra = footprints[(model.name, unit.id)]
    if allocator.basis == "arena":
        return f"{model.name} ({model.framework} {allocator.setting} unset: its arena grows without bound)"
    basis = "of total" if allocator.basis == "total" else "of free memory after weights"
    return (
        f"{model.name} ({model.framework} {allocator.setting} unset = {allocator.default_fraction:g} {basis}: "
        f"{weights + extra:.1f} GiB)"
    )


def _footprint_known(model: Model, allocators: dict[str, Allocator]) -> bool:
    """A greedy framework with a fraction of total memory has a known footprint without gpu_gb."""
    allocator = allocators.get(model.framework)
    return allocator is not None and allocator.basis == "total"


def _model_fact(
    idx: int,
    model: Model,
    units: list[CapacityUnit],
    unknown_targets: list[str],
    on_mig_parent: list[str],
    footprints: dict[tuple[str, str], tuple[float, float]],
    allocators: dict[str, Allocator],
    acc: Accounting,
) -> Fact:
    neighbours = {n.name: n for u in units for n in u.models if n.name != model.name}
    bulk_neighbours = [n for n in neighbours.values() if not n.latency_critical]
    best_bulk = min(bulk_neighbours, key=_effective_priority, default=None)
    limit, caps = model.rate_limit, model.caps
    per_instance = max((sum(footprints[(model.name, u.id)]) for u in units), default=model.gpu_gb or 0.0)
    allocator = allocators.get(model.framework)
    return {
        "idx": idx,
        "name": model.name,
        "gpu": units[0].id if units else (model.placed_on[0] if model.placed_on else ""),
        "gpus": [u.id for u in units],
        "targets": model.placed_on,
        "placed": bool(model.placed_on),
        "unknown_gpus": unknown_targets,
        "mig_parent_gpus": on_mig_parent,
        "framework": model.framework,
        "server": model.server or "",
        "instances": model.instances,
        "gpu_gb": float(model.gpu_gb or 0.0),
        "memory_known": model.gpu_gb is not None or _footprint_known(model, allocators),
        "memory_estimated": model.gpu_gb_estimated,
        "footprint_gb": model.instances * (per_instance + acc.cuda_context_gb),
        "latency_critical": model.latency_critical,
        "has_sla": model.sla_ms is not None,
        "sla_ms": float(model.sla_ms or 0.0),
        "has_priority": model.priority is not None,
        "priority": _effective_priority(model),
        "rate_limit_declared": limit is not None,
        "rate_limit_enabled": bool(limit and limit.enabled),
        "rate_limited": bool(
            limit and limit.enabled and (limit.max_rps is not None or limit.max_concurrency is not None)
        ),
        "max_rps": float(limit.max_rps) if limit and limit.max_rps is not None else 0.0,
        "max_concurrency": limit.max_concurrency if limit and limit.max_concurrency is not None else 0,
        "has_queue_bound": bool(limit and limit.max_queue is not None),
        "max_queue": limit.max_queue if limit and limit.max_queue is not None else 0,
        "has_queue_timeout": bool(limit and limit.queue_timeout_ms is not None),
        "queue_timeout_ms": float(limit.queue_timeout_ms) if limit and limit.queue_timeout_ms is not None else 0.0,
        "timeout_action": (limit.timeout_action or "") if limit else "",
        "capped": _is_capped(model),
        "max_batch_size": caps.max_batch_size if caps and caps.max_batch_size is not None else 0,
        "compute_pct": float(caps.compute_pct) if caps and caps.compute_pct is not None else 0.0,
        "greedy": allocator is not None,
        "greedy_setting": allocator.setting if allocator else "",
        "memory_fraction": float(model.memory_fraction or 0.0),
        "neighbours": sorted(neighbours),
        "critical_neighbours": sorted(n.name for n in neighbours.values() if n.latency_critical),
        "bulk_neighbours": sorted(n.name for n in bulk_neighbours),
        "best_bulk_priority": _effective_priority(best_bulk) if best_bulk else 0,
        "best_bulk_name": best_bulk.name if best_bulk else "",
        "best_bulk_priority_set": bool(best_bulk and best_bulk.priority is not None),
    }


def _summary(
    unit: CapacityUnit, fact: Fact, footprints: dict[tuple[str, str], tuple[float, float]], acc: Accounting
) -> GpuSummary:
    parts = [
        (m.name, m.instances * sum(footprints[(m.name, unit.id)])) for m in unit.models
    ]
    parts.sort(key=lambda p: -p[1])
    return GpuSummary(
        id=unit.id,
        product=fact["product"],
        sharing=unit.sharing,
        capacity_gb=unit.capacity_gb,
        usable_gb=fact["usable_gb"] if unit.capacity_gb is not None else None,
        committed_gb=fact["committed_gb"],
        declared_gb=fact["declared_gb"],
        context_gb=fact["context_gb"],
        greedy_gb=fact["greedy_gb"],
        models=parts,
        other_gb=fact["other_processes_gb"],
    )

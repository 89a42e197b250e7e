"""Facts: everything the rules need, computed once per plan in plain Python.

Rules are predicates over these facts, so all arithmetic that involves framework
behaviour (greedy allocators, CUDA contexts, MIG slices) lives here, where it can be
read, tested and documented, and never inside a rule expression. Facts are plain
dicts of str/int/float/bool/list so the expression engine converts them cheaply.

Units: GiB (2**30 bytes) everywhere. Numbers the plan schema types as float arrive as
Python floats (pydantic converts ints), so facts pass them on without `float()`: CEL
keeps int and double apart, and the schema is what keeps each fact's type fixed.

Where each fact is computed (`build_facts` runs these steps in order):

1. `_capacity_units`: every GPU, and every MIG slice of a GPU carved with `sharing: mig`.
2. `_model_fact`, per model: its facts but its neighbours, read from the plan once into
   a `_ModelView`; the model joins the units it names, each with the memory its greedy
   allocator reserves there (`_greedy_reserve`).
3. `_gpu_fact`, per unit: its facts, in one pass over the models there; it hands the
   models that run on it alone their neighbour facts (`_neighbours_on`).
4. `_neighbours_across`: the neighbour facts of models on several units, or on none.

Every fact is O(1) or O(its own subject) in size: a model's neighbour facts are counts
and the first few names (`NEIGHBOURS_LISTED`), never a copy of its unit's list, so the
facts of a plan grow linearly with its models however many share one GPU.

A unit's memory bar (`GpuSummary`, `_summary`) is drawn from its facts only when a
writer asks for it (`Facts.summaries`).

The webhook builds the facts of every object it judges, so the cost per plan matters.
Three habits keep it low: each model is read from the plan once; each unit is gone
through once; and each fact dict is filled in from a copy of a template (`MODEL_FACTS`,
`GPU_FACTS`) that fixes its keys and their order, which is much cheaper than building a
42- or 58-key dict from scratch.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from . import catalog, protection, waivers
from .capacity.match import PlanCapacity, RealUnit, match_plan
from .plan import Gpu, Model, ServingPlan
from .settings import Accounting

if TYPE_CHECKING:
    from .capacity.inventory import Inventory

Fact = dict[str, Any]


#: What `build_facts` counts with when given no accounting (only ever read).
_DEFAULT_ACCOUNTING = Accounting()


@dataclass(frozen=True)
class Allocator:
    """How a framework grabs GPU memory beyond its weights."""

    setting: str  # the knob users set, named as the framework names it
    basis: str  # "total": fraction of total memory; "free": of memory left after weights; "arena": grows, capped by a limit
    default_fraction: float | None  # None: no preallocation by default (arena) or the whole GPU (TensorFlow)


def _allocators(acc: Accounting) -> dict[str, Allocator]:
    """The greedy frameworks by name; one dict per set of default fractions, shared (only read)."""
    return _allocators_for(acc.vllm_default_fraction, acc.sglang_default_fraction, acc.tensorrt_llm_default_fraction)


@functools.lru_cache(maxsize=32, typed=True)
def _allocators_for(vllm: float, sglang: float, tensorrt_llm: float) -> dict[str, Allocator]:
    return {
        "vllm": Allocator("gpu_memory_utilization", "total", vllm),
        # SGLang takes its fraction of the memory free at start, and computes the default from the GPU's memory
        # (`sglang_default_fraction`); on an empty GPU that is the fraction of total memory.
        "sglang": Allocator("mem_fraction_static", "free-at-start", sglang),
        "tensorrt_llm": Allocator("kv_cache_free_gpu_mem_fraction", "free", tensorrt_llm),
        "tensorflow": Allocator("per_process_gpu_memory_fraction", "total", 1.0),
        "onnxruntime": Allocator("gpu_mem_limit", "arena", None),
    }


_ABSENT = catalog.Resolution("absent")


@dataclass(slots=True)
class CapacityUnit:
    """A GPU or a MIG slice: the thing that has memory and hosts model instances."""

    id: str
    parent: str
    kind: str  # "gpu" | "mig-slice"
    gpu: Gpu
    product: catalog.Product | None
    capacity_gb: float | None
    sharing: str
    #: What the plan says, before real capacity (when verified) lowers `capacity_gb`.
    declared_capacity_gb: float | None
    #: What is really there: `_DECLARED_ONLY` when the unit was checked against nothing.
    real: RealUnit
    #: False for a GPU carved into MIG slices: models go on its slices, not on it.
    hosts_models: bool
    #: The models placed here in plan order (a model naming the unit twice is here twice,
    #: in a row) and, for each, the GiB its greedy allocator reserves per instance here
    #: beyond its declared `weights` (`_greedy_reserve`).
    models: list[_ModelView] = field(default_factory=list)
    reserves: list[float] = field(default_factory=list)
    #: How the plan's product name resolved in the catalog (GPUs only; slices keep "absent").
    resolution: catalog.Resolution = _ABSENT
    #: Its models by serving process, for its latency-critical models' protection facts.
    protection: protection.UnitProtection | None = None


#: The real unit of a unit checked against nothing (`--capacity declared`, or a unit the
#: inventory does not mention): all neutral. Shared by those units, so only ever read.
_DECLARED_ONLY = RealUnit()


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
    #: The units behind `gpus`, for the memory bars; only writers ask for those.
    units: list[CapacityUnit] = field(repr=False)

    @functools.cached_property
    def summaries(self) -> list[GpuSummary]:
        """Each unit's memory bar, built on first use: the webhook never draws one."""
        return [_summary(unit, fact) for unit, fact in zip(self.units, self.gpus)]

    def collections(self) -> dict[str, list[Fact]]:
        return {"gpus": self.gpus, "models": self.models, "waivers": self.waivers, "plans": [self.plan]}


class _ModelView:
    """One model of the plan, read once: its facts, and what its units need to know of it."""

    __slots__ = (
        "fact",
        "model",
        "name",
        "instances",
        "critical",
        "server",
        "priority",
        "compute_pct",
        "capped",
        "memory_known",
        "weights",
        "allocator",
        "fraction",
        "default_greedy",
        "fraction_of_total",
        "gpus",
        "pinned_memory_gb",
        "shares_process",
        "limit_enforced",
        "limit_share",
        "fixed_footprint",
    )

    fact: Fact
    model: Model
    name: str
    instances: int
    critical: bool  # latency-critical; the others are bulk
    server: str
    priority: int  # effective: unset and 0 both mean 1, the highest (Triton's reading)
    compute_pct: float | None
    capped: bool  # by a batch size, a compute share or an enabled rate limit
    memory_known: bool
    weights: float  # GiB one instance declares (0 when not declared)
    allocator: Allocator | None  # None: not a greedy framework
    fraction: float | None  # the fraction its allocator takes, the framework default filled in
    default_greedy: bool  # greedy, and its allocator's setting left at the default
    fraction_of_total: float  # of total memory, claimed up front (0 when not of that kind)
    gpus: list[str]  # the ids of the units it runs on, in the order it names them (its `gpus` fact)
    pinned_memory_gb: float | None  # MPS CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, when given
    shares_process: bool  # its instances run in its server's one process: one CUDA context per GPU for all
    limit_enforced: bool  # its memory limit is enforced from outside, contexts included (HAMi)
    limit_share: float | None  # that limit as a share of the device, where it is given so
    fixed_footprint: bool  # greedy framework whose footprint a setting fixes (KV cache size, token bound)


def build_facts(
    plan: ServingPlan,
    accounting: Accounting | None = None,
    today: dt.date | None = None,
    inventory: Inventory | None = None,
    *,
    strict_capacity: bool = False,
) -> Facts:
    """The facts of one plan; with an `inventory`, checked against the GPUs really there."""
    acc = accounting or _DEFAULT_ACCOUNTING
    today = today or dt.date.today()
    allocators = _allocators(acc)
    real = match_plan(plan, inventory) if inventory is not None else PlanCapacity()
    units = _capacity_units(plan, real)
    unit_by_id = {u.id: u for u in units}
    views = [_model_fact(i, model, allocators, unit_by_id, acc) for i, model in enumerate(plan.models)]
    usable_share = 1.0 - acc.headroom_pct / 100.0
    gpu_facts = [_gpu_fact(i, unit, acc, usable_share) for i, unit in enumerate(units)]
    # The others got theirs from their unit (`_neighbours_on`).
    _neighbours_across([view for view in views if len(view.gpus) != 1], unit_by_id)
    for view in views:
        if not view.critical:  # what it needs of its units is its own compute share
            protection.bulk_protection(view, view.fact)
            continue
        protection.model_protection(
            view,
            [p for p in (unit_by_id[g].protection for g in view.gpus) if p is not None],
            view.fact,
            on_mig=bool(view.gpus) and all(unit_by_id[g].kind == "mig-slice" for g in view.gpus),
        )
    waiver_facts = [
        {
            "idx": i,
            "rule": w.rule,
            "model": w.model or "",
            "gpu": w.gpu or "",
            "reason": w.reason,
            "expires": w.expires.isoformat() if w.expires else "",
            "expired": waivers.expired(w, today),
            "days_expired": waivers.days_expired(w, today),
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
        "unjudged": [f"{o.kind} {o.name}".strip() for o in plan.unjudged],
    }
    return Facts(plan_fact, gpu_facts, [view.fact for view in views], waiver_facts, units)


# -- 1. capacity units --------------------------------------------------------------------


def _capacity_units(plan: ServingPlan, real: PlanCapacity) -> list[CapacityUnit]:
    units: list[CapacityUnit] = []
    for gpu in plan.gpus:
        resolution = catalog.resolve(gpu.product)
        product = resolution.product
        capacity = _judged_capacity(gpu.memory_gb, product)
        carved = gpu.sharing == "mig"
        unit = _unit(gpu.id, gpu.id, "gpu", gpu, product, capacity, gpu.sharing, real, not (carved and gpu.mig))
        unit.resolution = resolution
        units.append(unit)
        if carved:
            for n, profile in enumerate(gpu.mig or []):
                # A slice holds what NVML reports for it, below the number in its name.
                slice_gb = catalog.mig_slice_gb(profile, product)
                units.append(_unit(f"{gpu.id}:{n}", gpu.id, "mig-slice", gpu, product, slice_gb, "mig-slice", real, True))
    return units


def _judged_capacity(declared_gb: float | None, product: catalog.Product | None) -> float | None:
    """The memory a GPU is judged with: the smaller of what the plan declares and what its product has."""
    if product is None:
        return declared_gb
    if declared_gb is None:
        return product.memory_gb
    return min(declared_gb, product.memory_gb)


def _unit(
    unit_id: str,
    parent: str,
    kind: str,
    gpu: Gpu,
    product: catalog.Product | None,
    declared: float | None,
    sharing: str,
    real: PlanCapacity,
    hosts_models: bool,
) -> CapacityUnit:
    """A unit whose capacity is what the plan declares, lowered to the real memory when verified."""
    found = real.units.get(unit_id, _DECLARED_ONLY)
    capacity = declared
    if found.verified and found.memory_gb is not None:
        capacity = found.memory_gb if declared is None else min(declared, found.memory_gb)
    return CapacityUnit(unit_id, parent, kind, gpu, product, capacity, sharing, declared, found, hosts_models)


# -- 2. each model, and where it runs -----------------------------------------------------


#: Every model fact, in the order they are shown. Each model's facts start as a copy of
#: `_MODEL_FACT_TEMPLATE`: `_model_fact` fills in all but the neighbour facts, which
#: `_neighbours_on` (a model on one unit) or `_neighbours_across` (the others) add.
MODEL_FACTS: tuple[str, ...] = (
    "idx",
    "name",
    # where it runs
    "gpu",
    "gpus",
    "targets",
    "placed",
    "unknown_gpus",
    "mig_parent_gpus",
    # what it is and the memory it takes
    "framework",
    "server",
    "instances",
    "gpu_gb",
    "memory_known",
    "memory_estimated",
    "footprint_gb",
    "shares_gpu",
    # latency
    "latency_critical",
    "has_sla",
    "sla_ms",
    "has_service_time",
    "service_ms",
    "has_priority",
    "priority",
    "priority_levels",
    # rate limit and queue
    "rate_limit_declared",
    "rate_limit_enabled",
    "rate_limited",
    "max_rps",
    "max_concurrency",
    "has_queue_bound",
    "max_queue",
    "has_queue_timeout",
    "queue_timeout_ms",
    "timeout_action",
    # caps
    "capped",
    "max_batch_size",
    "compute_pct",
    "pinned_memory_gb",
    # greedy allocator
    "greedy",
    "greedy_setting",
    "memory_fraction",
    # who shares its units
    "neighbours",
    "critical_neighbours",
    "bulk_neighbours",
    "n_neighbours",
    "n_critical_neighbours",
    "n_bulk_neighbours",
    # what arbitrates between a latency-critical model and its bulk neighbours (`protection`)
    *protection.MODEL_FACTS,
)
_MODEL_FACT_TEMPLATE: Fact = dict.fromkeys(MODEL_FACTS)

#: A model's `neighbours`, `critical_neighbours` and `bulk_neighbours` name at most this
#: many models (the first in name order); `n_neighbours`, `n_critical_neighbours` and
#: `n_bulk_neighbours` count them all. Full name lists would cost every model a list as
#: long as its unit, memory that grows with the square of the models on one GPU (10,000
#: models: 100 million list slots); the unit's own facts (`models`, `critical`, `bulk`)
#: list everyone once.
NEIGHBOURS_LISTED = 10


def _model_fact(
    idx: int, model: Model, allocators: dict[str, Allocator], unit_by_id: dict[str, CapacityUnit], acc: Accounting
) -> _ModelView:
    """A model's facts (but its neighbours), read once; the model joins the units it runs on."""
    view = _ModelView()
    view.model = model
    view.fact = fact = _MODEL_FACT_TEMPLATE.copy()
    fact["idx"] = idx
    fact["name"] = view.name = model.name

    framework = model.framework
    allocator = view.allocator = allocators.get(framework)
    gpu_gb = model.gpu_gb
    fact["framework"] = framework
    fact["server"] = view.server = model.server or ""
    fact["instances"] = view.instances = model.instances
    if model.memory_growth and framework == "tensorflow":
        allocator = view.allocator = None  # grows on demand: holds what it uses, reserves nothing up front
    fact["gpu_gb"] = gpu_gb or 0.0
    view.weights = gpu_gb or 0.0
    # One CUDA context per process per GPU: the instances of a model with a server run in that process.
    shares = model.instances_share_process
    view.shares_process = bool(model.server) if shares is None else shares and bool(model.server)
    view.limit_enforced = model.memory_limit_enforced and (model.memory_limit_gb is not None or model.memory_fraction is not None)
    # A share of the device enforced from outside (HAMi gpumem-percentage), for a model that is not greedy.
    view.limit_share = model.memory_fraction if model.memory_limit_enforced and allocator is None else None
    view.fixed_footprint = allocator is not None and (
        model.kv_cache_gb is not None or (model.kv_cache_tokens is not None and gpu_gb is not None)
    )
    # A greedy framework that claims a fraction up front, an allocator bounded by a limit, or a
    # fixed KV cache has a known footprint without gpu_gb.
    fact["memory_known"] = view.memory_known = (
        gpu_gb is not None
        or model.memory_limit_gb is not None
        or model.kv_cache_gb is not None
        or (model.memory_limit_enforced and model.memory_fraction is not None)
        or (allocator is not None and allocator.basis in ("total", "free-at-start"))
    )
    fact["memory_estimated"] = model.gpu_gb_estimated

    priority = model.priority
    fact["latency_critical"] = view.critical = model.latency_critical
    fact["has_sla"] = model.sla_ms is not None
    fact["sla_ms"] = model.sla_ms or 0.0
    fact["has_service_time"] = model.service_ms is not None
    fact["service_ms"] = model.service_ms or 0.0
    fact["priority_levels"] = model.priority_levels or 0
    fact["has_priority"] = priority is not None
    # Triton's reading: unset and 0 both mean 1, the highest.
    fact["priority"] = view.priority = priority if priority is not None and priority > 1 else 1

    limit = model.rate_limit
    if limit is None:
        rate_limited = False
        fact.update(_NO_RATE_LIMIT)
    else:
        max_rps, max_concurrency = limit.get("max_rps"), limit.get("max_concurrency")
        max_queue, queue_timeout_ms = limit.get("max_queue"), limit.get("queue_timeout_ms")
        enabled = limit.get("enabled", True)
        # A limit the server ignores (tritonserver without --rate-limit) limits nothing.
        rate_limited = enabled and (max_rps is not None or max_concurrency is not None)
        fact["rate_limit_declared"] = True
        fact["rate_limit_enabled"] = enabled
        fact["max_rps"] = max_rps if max_rps is not None else 0.0
        fact["max_concurrency"] = max_concurrency if max_concurrency is not None else 0
        fact["has_queue_bound"] = max_queue is not None
        fact["max_queue"] = max_queue if max_queue is not None else 0
        fact["has_queue_timeout"] = queue_timeout_ms is not None
        fact["queue_timeout_ms"] = queue_timeout_ms if queue_timeout_ms is not None else 0.0
        fact["timeout_action"] = limit.get("timeout_action") or ""
    fact["rate_limited"] = rate_limited

    caps = model.caps
    max_batch_size = caps.get("max_batch_size") if caps else None
    compute_pct = view.compute_pct = caps.get("compute_pct") if caps else None
    fact["capped"] = view.capped = max_batch_size is not None or compute_pct is not None or rate_limited
    fact["max_batch_size"] = max_batch_size if max_batch_size is not None else 0
    fact["compute_pct"] = compute_pct if compute_pct is not None else 0.0
    pinned = view.pinned_memory_gb = caps.get("pinned_memory_gb") if caps else None
    fact["pinned_memory_gb"] = pinned if pinned is not None else 0.0

    memory_fraction = model.memory_fraction
    fact["greedy"] = allocator is not None
    fact["greedy_setting"] = allocator.setting if allocator else ""
    fact["memory_fraction"] = memory_fraction or 0.0
    view.fraction = None
    view.default_greedy = False
    view.fraction_of_total = 0.0
    if allocator is not None:
        default = allocator.default_fraction
        if framework == "vllm" and _older_or_same(model.framework_version, acc.vllm_legacy_until):
            default = acc.vllm_legacy_default_fraction
        view.fraction = memory_fraction if memory_fraction is not None else default
        if allocator.basis == "arena":
            view.default_greedy = model.memory_limit_gb is None
        elif view.fixed_footprint:
            view.fraction = None  # the fraction no longer decides its footprint
        else:
            view.default_greedy = memory_fraction is None
            if allocator.basis == "total":  # claimed up front: vLLM refuses to start unless it is free
                view.fraction_of_total = float(view.fraction or 0.0)

    # Where it runs, and the most one instance takes on any of its units.
    named = model.gpus  # `model.placed_on`, written out
    targets = list(named) if named is not None else [model.gpu] if model.gpu is not None else []
    gpus: list[str] = []
    view.gpus = gpus
    unknown: list[str] = []  # ids that are no GPU or slice of the plan
    on_mig_parent: list[str] = []  # GPUs carved into MIG slices, named instead of a slice
    per_instance: float | None = None  # GiB, greedy reservation included
    # Nothing beyond its weights on any unit: not greedy, and no memory limit that sizes it.
    reserves_nothing = allocator is None and model.memory_limit_gb is None and view.limit_share is None
    for target in targets:
        unit = unit_by_id.get(target)
        if unit is None:
            unknown.append(target)
        elif not unit.hosts_models:
            on_mig_parent.append(target)
        else:
            reserve = 0.0 if reserves_nothing else _greedy_reserve(view, unit.capacity_gb, acc)
            unit.models.append(view)
            unit.reserves.append(reserve)
            gpus.append(unit.id)
            if per_instance is None or view.weights + reserve > per_instance:
                per_instance = view.weights + reserve
    fact["gpu"] = gpus[0] if gpus else (targets[0] if targets else "")
    fact["gpus"] = gpus
    fact["targets"] = targets
    fact["placed"] = bool(targets)
    fact["unknown_gpus"] = unknown
    fact["mig_parent_gpus"] = on_mig_parent
    # All its instances with their contexts, on the unit where one instance takes the most.
    if per_instance is None:
        per_instance = view.weights
    contexts = 0 if view.limit_enforced else 1 if view.shares_process else view.instances
    fact["footprint_gb"] = view.instances * per_instance + contexts * acc.cuda_context_gb
    # `shares_gpu` and the other neighbour facts come from its units (`_neighbours_on`, `_neighbours_across`).
    return view


#: A model's facts when it declares no rate limit.
_NO_RATE_LIMIT: Fact = {
    "rate_limit_declared": False,
    "rate_limit_enabled": False,
    "max_rps": 0.0,
    "max_concurrency": 0,
    "has_queue_bound": False,
    "max_queue": 0,
    "has_queue_timeout": False,
    "queue_timeout_ms": 0.0,
    "timeout_action": "",
}


def _greedy_reserve(view: _ModelView, capacity: float | None, acc: Accounting) -> float:
    """GiB a greedy allocator reserves for one instance beyond its declared `weights`.

    An instance takes `weights + reserve` GiB on a unit of `capacity` GiB.
    """
    weights = view.weights
    allocator = view.allocator
    model = view.model
    if model.kv_cache_gb is not None and allocator is not None:
        return model.kv_cache_gb  # weights + a KV cache of fixed size; the fraction is ignored
    if view.fixed_footprint:
        return 0.0  # gpu_gb declared and the KV cache bounded in tokens: gpu_gb is the footprint
    if allocator is None:
        # Not greedy; an enforced limit (HAMi) with no size declared is its footprint, given in
        # GiB or, where the GPU's memory was not known to the reader, as a share of it.
        limit = model.memory_limit_gb
        if limit is not None and model.gpu_gb is None:
            return max(0.0, limit - weights)
        if view.limit_share is not None and capacity is not None and model.gpu_gb is None:
            return view.limit_share * capacity
        return 0.0
    if allocator.basis == "arena":
        limit = model.memory_limit_gb
        return max(0.0, limit - weights) if limit is not None else 0.0
    if capacity is None:
        return 0.0
    fraction = _fraction_on(view, capacity, acc)
    if allocator.basis in ("total", "free-at-start"):
        # vLLM: of total memory. SGLang: of the memory free at start, which on a GPU where it
        # starts first is all of it, the order that leaves its neighbours least.
        return max(0.0, fraction * capacity - weights)
    # "free": a fraction of what is left after its own weights and context, assuming it
    # loads first, which is the order that leaves the least for its neighbours.
    return max(0.0, fraction * (capacity - weights - acc.cuda_context_gb))


def _fraction_on(view: _ModelView, capacity: float | None, acc: Accounting) -> float:
    """The fraction a greedy allocator takes on a unit of `capacity` GiB, its default filled in."""
    if view.fraction is None:
        return 1.0
    if view.model.memory_fraction is None and view.model.framework == "sglang" and capacity is not None:
        gpus = view.model.gpus  # tensor parallel: the GPUs it spans
        return sglang_default_fraction(capacity * 1024.0, max(1, len(gpus)) if gpus is not None else 1)
    return view.fraction


def sglang_default_fraction(gpu_mib: float, tp_size: int = 1) -> float:
    """SGLang's default mem_fraction_static for a GPU of `gpu_mib` MiB (server_args.py,
    `_handle_gpu_memory_settings`, without DP attention, piecewise CUDA graphs or speculative decoding):
    the GPU's memory less an estimate of activations and CUDA graph buffers, as a share of it."""
    if gpu_mib < 20 * 1024:
        chunk, graph_bs = 2048, 8
    elif gpu_mib < 35 * 1024:
        chunk, graph_bs = 2048, (24 if tp_size < 4 else 80)
    elif gpu_mib < 60 * 1024:
        chunk, graph_bs = 4096, (32 if tp_size < 4 else 160)
    elif gpu_mib < 160 * 1024:
        chunk, graph_bs = 8192, (256 if tp_size < 4 else 512)
    else:
        chunk, graph_bs = 16384, 512
    reserved = 512 + max(chunk, 2048) * 1.5 + graph_bs * 2 + tp_size / 8 * 1024
    if gpu_mib > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    return round((gpu_mib - reserved) / gpu_mib, 3) if gpu_mib > reserved else 0.0


def _older_or_same(version: str | None, until: str) -> bool:
    """True when `version` (`v0.6.3`, `0.6.3.post1`) is a release up to `until`; False when unknown."""
    if not version:
        return False
    parts: list[int] = []
    for piece in version.lstrip("vV").split("."):
        leading = re.match(r"\d+", piece)  # `3rc1` is 3: a pre-release of 0.6.3, not 0.6.31
        if leading is None:
            break
        parts.append(int(leading.group()))
    if not parts:
        return False
    limit = [int(p) for p in until.split(".")]
    return parts[: len(limit)] <= limit


# -- 3. per unit --------------------------------------------------------------------------


#: Every GPU (and MIG slice) fact, in the order they are shown. Each unit's facts start
#: as a copy of `_GPU_FACT_TEMPLATE` (which holds the neutral real-capacity facts).
GPU_FACTS: tuple[str, ...] = (
    "idx",
    "id",
    "gpu",
    "parent",
    "kind",
    "product",
    "product_known",
    "declared_product",
    "sharing",
    # how the product name resolved in the catalog (`_catalog_facts`)
    "product_status",
    "product_hint",
    "catalog_capacity_gb",
    "memory_gb_declared",
    "capacity_bound_gb",
    # memory
    "capacity_known",
    "capacity_gb",
    "capacity_text",
    "usable_gb",
    "declared_gb",
    "greedy_gb",
    "context_gb",
    "committed_gb",
    "overflow_gb",
    "utilisation_pct",
    "n_models",
    "n_processes",
    # who shares it
    "models",
    "critical",
    "bulk",
    "servers_apart",
    "bulk_without_compute_cap",
    "bulk_uncapped",
    "compute_pct_sum",
    "critical_compute_pct_sum",
    "bulk_compute_pct_sum",
    "critical_without_compute_pct",
    "largest_model",
    "largest_gb",
    "unknown_memory",
    # what arbitrates between its latency-critical and bulk models (`protection`)
    *protection.GPU_FACTS,
    # greedy allocators
    "greedy_models",
    "greedy_default",
    "greedy_default_detail",
    "greedy_fraction_sum",
    "greedy_cannot_start",
    "greedy_reservations",
    "limits_enforced",
    "limit_share_sum",
    # MIG layout (`_mig_layout_facts`)
    "mig",
    "mig_supported",
    "mig_unknown_profiles",
    "mig_over_limit",
    "mig_compute_used",
    "mig_compute_total",
    "mig_memory_used_gb",
    "mig_memory_slices_used",
    "mig_memory_slices_total",
    # real capacity (`_real_capacity_facts`)
    "declared_capacity_gb",
    "verified",
    "real_found",
    "real_device",
    "real_memory_known",
    "real_memory_gb",
    "real_product",
    "product_matches",
    "real_mig_mode",
    "real_mig",
    "real_mig_text",
    "mig_matches",
    "other_processes_gb",
    "other_processes",
    "capacity_note",
)


def _real_capacity_facts(fact: Fact, real: RealUnit, declared_capacity_gb: float | None) -> None:
    """What the real device says (neutral values under `--capacity declared`)."""
    fact["declared_capacity_gb"] = declared_capacity_gb or 0.0
    fact["verified"] = real.verified
    fact["real_found"] = real.found
    fact["real_device"] = real.device
    fact["real_memory_known"] = real.memory_gb is not None
    fact["real_memory_gb"] = real.memory_gb or 0.0
    fact["real_product"] = real.product
    fact["product_matches"] = real.product_matches
    fact["real_mig_mode"] = real.mig_mode
    fact["real_mig"] = real.mig
    fact["real_mig_text"] = real.mig_text
    fact["mig_matches"] = real.mig_matches
    fact["other_processes_gb"] = real.processes_gb
    fact["other_processes"] = real.processes
    fact["capacity_note"] = real.note


_GPU_FACT_TEMPLATE: Fact = dict.fromkeys(GPU_FACTS)
_real_capacity_facts(_GPU_FACT_TEMPLATE, _DECLARED_ONLY, None)


def _gpu_fact(idx: int, unit: CapacityUnit, acc: Accounting, usable_share: float) -> Fact:
    """The facts of one unit."""
    fact = _GPU_FACT_TEMPLATE.copy()
    product = unit.product
    fact["idx"] = idx
    fact["id"] = fact["gpu"] = unit.id
    fact["parent"] = unit.parent
    fact["kind"] = unit.kind
    fact["product"] = product.name if product else (unit.gpu.product or "")
    fact["product_known"] = product is not None
    fact["declared_product"] = unit.gpu.product or ""
    fact["sharing"] = unit.sharing
    _catalog_facts(fact, unit)

    # One pass over the models here, in plan order.
    context_gb = acc.cuda_context_gb
    names: list[str] = []
    critical: list[str] = []
    bulk: list[str] = []
    bulk_without_compute_cap: list[str] = []
    bulk_uncapped: list[str] = []
    critical_without_compute_pct: list[str] = []
    unknown_memory: list[str] = []
    greedy_models: list[str] = []
    greedy_default: list[str] = []
    greedy_default_detail: list[str] = []
    greedy_reservations: list[str] = []  # each greedy model's reservation here, with its figures
    declared_parts: list[float] = []  # per model: GiB its instances declare
    greedy_parts: list[float] = []  # per model: GiB their allocators reserve beyond that
    fractions: list[float] = []  # per model: its instances' fractions of total memory
    n_processes = 0  # CUDA processes: each instance, or one per server whose instances share it
    servers_counted: set[str] = set()
    enforced = 0  # models whose memory limit is enforced from outside, contexts included
    enforced_shares = 0.0  # their limits given as shares of the device, summed over instances
    cannot_start: list[str] = []
    largest, largest_gb = "", 0.0  # the first of the models taking the most, contexts included
    server = unit.models[0].server if unit.models else ""
    servers_apart = False  # some model here runs in another server than the first
    # Each model once (a model naming the unit twice comes twice, in a row):
    shares: list[float] = []  # compute shares: all, latency-critical, bulk
    critical_shares: list[float] = []
    bulk_shares: list[float] = []
    once: list[_ModelView] = []  # each model here once, in plan order
    repeats = False
    previous: _ModelView | None = None
    for m, reserve in zip(unit.models, unit.reserves):
        name, n, weights = m.name, m.instances, m.weights
        names.append(name)
        declared_parts.append(n * weights)
        greedy_parts.append(n * reserve)
        fractions.append(m.fraction_of_total * n)
        if m.limit_enforced:
            enforced += 1  # HAMi counts the context inside the limit
            contexts = 0
            if m.limit_share is not None:
                enforced_shares += n * m.limit_share
        elif m.shares_process:
            contexts = 0 if m.server in servers_counted else 1
            servers_counted.add(m.server)
        else:
            contexts = n
        n_processes += contexts
        total_gb = n * (weights + reserve) + contexts * context_gb
        allocator = m.allocator
        if allocator is not None and allocator.basis in ("total", "free-at-start") and not m.fixed_footprint:
            budget = _fraction_on(m, unit.capacity_gb, acc) * (unit.capacity_gb or 0.0)
            if unit.capacity_gb is not None and weights > budget:
                cannot_start.append(
                    f"{name} ({weights:.1f} GiB > {m.model.framework} {allocator.setting} "
                    f"{_fraction_on(m, unit.capacity_gb, acc):g} × {unit.capacity_gb:.1f} = {budget:.1f} GiB)"
                )
        if len(names) == 1 or total_gb > largest_gb:
            largest, largest_gb = name, total_gb
        if m.server != server:
            servers_apart = True
        if m.critical:
            critical.append(name)
            if m.compute_pct is None:
                critical_without_compute_pct.append(name)
        else:
            bulk.append(name)
            if m.compute_pct is None:
                bulk_without_compute_cap.append(name)
            if not m.capped:
                bulk_uncapped.append(name)
        if not m.memory_known:
            unknown_memory.append(name)
        if allocator is not None:
            greedy_models.append(name)
            # An arena grows as it is used rather than taking memory up front: it matters only
            # where the GPU's memory is known to run out.
            if m.default_greedy and (allocator.basis != "arena" or unit.capacity_gb is not None):
                greedy_default.append(name)
                greedy_default_detail.append(
                    _greedy_detail(m, allocator, weights + reserve, _fraction_on(m, unit.capacity_gb, acc), unit.capacity_gb)
                )
            if reserve > 0.0 and unit.capacity_gb is not None:
                greedy_reservations.append(_reservation_text(m, allocator, reserve, unit.capacity_gb, acc))
        if m is previous:
            repeats = True
            continue
        previous = m
        once.append(m)
        if m.compute_pct is not None:
            shares.append(m.compute_pct)
            (critical_shares if m.critical else bulk_shares).append(m.compute_pct)

    # Memory: every instance of every model here, its CUDA context, and what greedy
    # allocators reserve beyond the declared size.
    declared = sum(declared_parts, 0.0)  # a double even when no model is here
    greedy = sum(greedy_parts, 0.0)
    context = n_processes * context_gb
    # Memory other processes already hold is not free for the plan: it counts as committed.
    committed = declared + greedy + context + unit.real.processes_gb
    capacity = unit.capacity_gb or 0.0
    # Limits a device plugin enforces (HAMi) cannot overflow: judged against the whole device.
    all_enforced = bool(names) and enforced == len(names)
    usable = capacity if all_enforced else capacity * usable_share
    fact["capacity_known"] = unit.capacity_gb is not None
    fact["capacity_gb"] = capacity
    fact["capacity_text"] = _capacity_text(unit)
    fact["usable_gb"] = usable
    fact["declared_gb"] = declared
    fact["greedy_gb"] = greedy
    fact["context_gb"] = context
    fact["committed_gb"] = committed
    fact["overflow_gb"] = max(0.0, committed - usable) if unit.capacity_gb is not None else 0.0
    fact["utilisation_pct"] = 100.0 * committed / capacity if capacity else 0.0
    fact["n_models"] = len(names)
    fact["n_processes"] = n_processes

    fact["models"] = names
    fact["critical"] = critical
    fact["bulk"] = bulk
    # Priorities arbitrate inside one serving process only; across processes the
    # GPU time-slices blindly unless MPS, MIG or compute caps step in.
    fact["servers_apart"] = bool(critical and bulk and servers_apart)
    fact["bulk_without_compute_cap"] = bulk_without_compute_cap
    fact["bulk_uncapped"] = bulk_uncapped
    fact["compute_pct_sum"] = float(sum(shares))
    fact["critical_compute_pct_sum"] = float(sum(critical_shares))
    fact["bulk_compute_pct_sum"] = float(sum(bulk_shares))
    fact["critical_without_compute_pct"] = critical_without_compute_pct
    fact["largest_model"] = largest
    fact["largest_gb"] = largest_gb
    fact["unknown_memory"] = unknown_memory
    fact["greedy_models"] = greedy_models
    fact["greedy_default"] = greedy_default
    fact["greedy_default_detail"] = greedy_default_detail
    fact["greedy_fraction_sum"] = sum(fractions, 0.0)
    fact["greedy_cannot_start"] = cannot_start
    fact["greedy_reservations"] = greedy_reservations
    fact["limits_enforced"] = all_enforced
    fact["limit_share_sum"] = enforced_shares

    unit.protection = protection.unit_protection(once, fact)
    _mig_layout_facts(fact, unit)
    real = unit.real
    if real is not _DECLARED_ONLY:
        _real_capacity_facts(fact, real, unit.declared_capacity_gb)
    else:  # the template's neutral facts, with lists of its own
        fact["declared_capacity_gb"] = unit.declared_capacity_gb or 0.0
        fact["real_mig"] = []
        fact["other_processes"] = []

    if names:
        if repeats:  # each model once
            _neighbours_on(unit, list(set(names)), list(set(critical)), list(set(bulk)))
        else:
            _neighbours_on(unit, names, critical, bulk)

    return fact


def _summary(unit: CapacityUnit, fact: Fact) -> GpuSummary:
    """A unit's memory bar: its totals, and each model's GiB there, largest first."""
    parts = [(m.name, m.instances * (m.weights + reserve)) for m, reserve in zip(unit.models, unit.reserves)]
    parts.sort(key=itemgetter(1), reverse=True)  # equals keep plan order
    return GpuSummary(
        unit.id,
        fact["product"],
        unit.sharing,
        unit.capacity_gb,
        fact["usable_gb"] if unit.capacity_gb is not None else None,
        fact["committed_gb"],
        fact["declared_gb"],
        fact["context_gb"],
        fact["greedy_gb"],
        parts,
        unit.real.processes_gb,
    )


def _catalog_facts(fact: Fact, unit: CapacityUnit) -> None:
    """How a GPU's product name resolved, and the memory the catalog gives it.

    `catalog_capacity_gb` is the product's memory (0 when the name did not resolve),
    `memory_gb_declared` the plan's own `memory_gb` (0 when not given): the GPU is judged
    with the smaller. `capacity_bound_gb` is the most memory any catalog GPU has, a bound
    that holds even when the product is unknown.
    """
    resolution = unit.resolution
    fact["product_status"] = resolution.status
    fact["product_hint"] = resolution.hint
    product = unit.product
    fact["catalog_capacity_gb"] = product.memory_gb if product is not None and unit.kind == "gpu" else 0.0
    declared = unit.gpu.memory_gb if unit.kind == "gpu" else None
    fact["memory_gb_declared"] = declared if declared is not None else 0.0
    fact["capacity_bound_gb"] = catalog.largest_memory_gb()


def _mig_layout_facts(fact: Fact, unit: CapacityUnit) -> None:
    """The MIG profiles carved on a GPU, checked against its product's MIG table.

    Memory is counted in memory slices (8; A30: 4), the unit MIG allocates, not in the
    numbers in profile names: two H200 3g.71gb take 4 + 4 of 8 slices although 71 + 71
    is more than the 140.4 GiB the GPU reports.
    """
    product = unit.product
    mig_table = product.mig if product else {}
    fact["mig_supported"] = bool(mig_table)
    fact["mig_compute_total"] = product.compute_slices if product else 7
    fact["mig_memory_slices_total"] = product.memory_slices if product else 8
    mig_profiles = list(unit.gpu.mig or []) if unit.kind == "gpu" else []
    fact["mig"] = mig_profiles
    if not mig_profiles:
        fact["mig_unknown_profiles"] = []
        fact["mig_over_limit"] = []
        fact["mig_compute_used"] = 0
        fact["mig_memory_used_gb"] = 0.0
        fact["mig_memory_slices_used"] = 0
        return
    counts: dict[str, int] = {}
    for profile in mig_profiles:
        counts[profile] = counts.get(profile, 0) + 1
    if product is not None:
        fact["mig_unknown_profiles"] = [p for p in counts if p not in mig_table]
    else:  # no product to check against: a profile no catalog product offers
        fact["mig_unknown_profiles"] = [p for p in counts if not catalog.offered_mig_profile(p)]
    fact["mig_over_limit"] = [
        f"{p} ×{n} (at most {mig_table[p]})" for p, n in counts.items() if p in mig_table and n > mig_table[p]
    ]
    fact["mig_compute_used"] = sum([catalog.mig_profile_compute_slices(p) for p in mig_profiles])
    if product is not None:
        known = [p for p in mig_profiles if p in mig_table]
        fact["mig_memory_used_gb"] = sum([product.mig_slice_gb(p) for p in known], 0.0)
        fact["mig_memory_slices_used"] = sum([product.mig_memory_slices(p) for p in known])
    else:
        fact["mig_memory_used_gb"] = sum([catalog.mig_profile_memory_gb(p) for p in mig_profiles], 0.0)
        fact["mig_memory_slices_used"] = 0


def _greedy_detail(model: _ModelView, allocator: Allocator, instance_gb: float, fraction: float, capacity: float | None) -> str:
    framework = model.model.framework
    if allocator.basis == "arena":
        return f"{model.name} ({framework} {allocator.setting} unset: its arena grows without bound)"
    if model.model.memory_growth is False and framework == "tensorflow":
        return f"{model.name} ({framework}: maps the whole GPU at start)"
    basis = {
        "total": "of total",
        "free-at-start": "of the memory free at start",
        "free": "of free memory after weights",
    }[allocator.basis]
    size = f": {instance_gb:.1f} GiB" if capacity is not None else ""
    return f"{model.name} ({framework} {allocator.setting} unset = {fraction:g} {basis}{size})"


def _capacity_text(unit: CapacityUnit) -> str:
    """A unit's memory as messages and fix hints write it; the plan's larger figure beside the
    device's when real capacity lowered it, so one overflow needs no second finding to explain it."""
    if unit.capacity_gb is None:
        return "unknown"
    declared = unit.declared_capacity_gb
    if unit.real.verified and declared is not None and declared > unit.capacity_gb:
        return f"{unit.capacity_gb:.1f} GiB (the device's; {declared:.1f} declared)"
    return f"{unit.capacity_gb:.1f} GiB"


def _reservation_text(model: _ModelView, allocator: Allocator, reserve: float, capacity: float, acc: Accounting) -> str:
    """What a greedy allocator takes on a unit of `capacity` GiB, with the figures it is computed from."""
    framework = model.model.framework
    weights = model.weights
    n = model.instances
    each = f" each, × {n} instances" if n > 1 else ""
    if allocator.basis == "arena":
        return f"{model.name} ({framework} {allocator.setting}: an arena of up to {weights + reserve:.1f} GiB{each})"
    if model.fraction is None:  # a KV cache of fixed size beside its weights
        return f"{model.name} ({framework} KV cache of {reserve:.1f} GiB beside {weights:.1f} GiB weights{each})"
    fraction = _fraction_on(model, capacity, acc)
    how = "" if model.model.memory_fraction is not None else " (default)"
    if allocator.basis == "free":
        free = capacity - weights - acc.cuda_context_gb
        return (
            f"{model.name} ({framework} {allocator.setting} {fraction:g}{how} of the {free:.1f} GiB free after its "
            f"{weights:.1f} GiB weights = {reserve:.1f} GiB KV cache{each})"
        )
    return f"{model.name} ({framework} {allocator.setting} {fraction:g}{how} × {capacity:.1f} GiB = {fraction * capacity:.1f} GiB{each})"


# -- 4. who shares a model's units --------------------------------------------------------


def _named(names: list[str], name: str) -> list[str]:
    """The first NEIGHBOURS_LISTED of `names` (sorted, each once) other than `name`: O(NEIGHBOURS_LISTED)."""
    head = names[: NEIGHBOURS_LISTED + 1]
    if name in head:
        head.remove(name)
    return head[:NEIGHBOURS_LISTED]


def _neighbour_facts(
    view: _ModelView,
    everyone: list[str],
    critical: list[str],
    bulk: list[str],
    present: bool,
) -> None:
    """One model's neighbour facts from the sorted names of every model beside it, itself
    included when `present`: counts of all, names of the first NEIGHBOURS_LISTED."""
    fact, name = view.fact, view.name
    own = 1 if present else 0
    fact["neighbours"] = _named(everyone, name)
    fact["critical_neighbours"] = _named(critical, name)
    fact["bulk_neighbours"] = _named(bulk, name)
    fact["n_neighbours"] = neighbours = len(everyone) - own
    # Shared: with other models, or between its own instances when each is a process.
    fact["shares_gpu"] = neighbours > 0 or (view.instances > 1 and not view.shares_process and bool(view.gpus))
    fact["n_critical_neighbours"] = len(critical) - (own if view.critical else 0)
    fact["n_bulk_neighbours"] = len(bulk) - (0 if view.critical else own)


def _neighbours_on(
    unit: CapacityUnit,
    names: list[str],
    critical: list[str],
    bulk: list[str],
) -> None:
    """The neighbour facts of each model that runs on this unit alone: everybody else here.

    `names`, `critical` and `bulk` hold each model here once; they are sorted once for the
    unit, and each model takes only counts and the first few names from them, so a unit
    of n models costs O(n log n), never n lists of n names.
    """
    all_names, critical_names, bulk_names = sorted(names), sorted(critical), sorted(bulk)
    n_all, n_critical, n_bulk = len(all_names), len(critical_names), len(bulk_names)
    # `_neighbour_facts` of a model present here, written out: this runs for most models of a plan.
    listed = NEIGHBOURS_LISTED
    for m in unit.models:
        if len(m.gpus) != 1:
            continue
        fact, name = m.fact, m.name
        fact["neighbours"] = _named(all_names, name)
        if m.critical:
            fact["critical_neighbours"] = _named(critical_names, name)
            fact["bulk_neighbours"] = bulk_names[:listed]
            fact["n_critical_neighbours"] = n_critical - 1
            fact["n_bulk_neighbours"] = n_bulk
        else:
            fact["critical_neighbours"] = critical_names[:listed]
            fact["bulk_neighbours"] = _named(bulk_names, name)
            fact["n_critical_neighbours"] = n_critical
            fact["n_bulk_neighbours"] = n_bulk - 1
        fact["n_neighbours"] = n_all - 1
        # Shared: with other models, or between its own instances when each is a process.
        fact["shares_gpu"] = n_all > 1 or (m.instances > 1 and not m.shares_process)


def _neighbours_across(views: list[_ModelView], unit_by_id: dict[str, CapacityUnit]) -> None:
    """The neighbour facts of models on several units (tensor parallel), or on none.

    Models that name the same units share one count of who is there, so many
    tensor-parallel models on the same GPUs cost one pass over those GPUs, not one each.
    """
    groups: dict[tuple[str, ...], list[_ModelView]] = {}
    for view in views:
        groups.setdefault(tuple(view.gpus), []).append(view)
    for unit_ids, members in groups.items():
        # Everyone on these units once, in the order the units and their models come.
        present = {m.name: m for unit_id in unit_ids for m in unit_by_id[unit_id].models}
        everyone = sorted(present)
        critical = sorted([n for n, m in present.items() if m.critical])
        bulk = sorted([n for n, m in present.items() if not m.critical])
        for view in members:
            _neighbour_facts(view, everyone, critical, bulk, view.name in present)

"""The problem `gpuadmit suggest` solves, read from a plan and the linter's facts of it.

The units (GPUs and MIG slices) and their capacity come from the linter's facts, so the
catalog, MIG slice sizes and real capacity are what the rules judge with. The memory
one instance takes is estimated here with the README's formula (weights + greedy
reservation + one CUDA context); where the rules count differently, the linter's verdict
on the suggested plan corrects the estimate (`Problem.budget_gb` is lowered by the
overflow it reports) and the plan is solved again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..plan import Model, ServingPlan
from ..settings import Accounting

#: How each greedy framework takes memory (see README "How memory is counted"):
#: "total" a fraction of total memory, "free" a fraction of what its weights leave free,
#: "arena" an allocator that grows unless `memory_limit_gb` bounds it.
GREEDY_BASIS = {
    "vllm": "total",
    "sglang": "total",
    "tensorflow": "total",
    "tensorrt_llm": "free",
    "onnxruntime": "arena",
}


@dataclass(frozen=True)
class Unit:
    """A GPU or MIG slice that hosts models."""

    id: str
    parent: str
    kind: str  # "gpu" | "mig-slice"
    sharing: str
    capacity_gb: float | None
    usable_gb: float | None


@dataclass(frozen=True)
class Mode:
    """One way to set a model's memory: its greedy fraction or arena limit."""

    memory_fraction: float | None
    memory_limit_gb: float | None
    #: True when this mode differs from what the input says.
    changed: bool
    #: A greedy allocator left at its default: the rules allow that only alone on a unit.
    alone_only: bool = False


@dataclass
class Item:
    """One model: what may change about it, and what it has now."""

    index: int
    name: str
    critical: bool
    framework: str
    weights: float  # GiB one instance declares (0 when unknown)
    memory_known: bool
    current_units: tuple[str, ...]  # valid units it is on now
    instances: int
    lo: int  # fewest instances when placed
    hi: int  # most instances
    droppable: bool  # may end with no instance (bulk models only)
    allowed: tuple[str, ...]  # units it may be placed on (single-unit models)
    spans: bool  # on several units at once (tensor parallel): never moves
    throughput_rps: float | None
    expected_rps: float | None
    #: Memory settings to choose from, per unit it may use.
    modes: dict[str, list[Mode]] = field(default_factory=dict)


@dataclass
class Problem:
    plan: ServingPlan
    accounting: Accounting
    units: dict[str, Unit]
    items: list[Item]
    move: bool
    #: GiB the solver may commit per unit: usable memory, lowered where the linter found
    #: the estimate short.
    budget_gb: dict[str, float]
    #: Sets of models that must not all share one unit of the given kinds (found by the
    #: linter: no protection made them safe together), with the findings that said so.
    cuts: list[tuple[frozenset[str], frozenset[str], str]] = field(default_factory=list)

    def instance_gb(self, item: Item, unit_id: str, mode: Mode) -> float:
        """GiB one instance of `item` takes on `unit_id` in `mode`, its CUDA context included."""
        unit = self.units[unit_id]
        capacity = unit.capacity_gb or 0.0
        context = self.accounting.cuda_context_gb
        return item.weights + reserve_gb(item.framework, item.weights, capacity, context, mode, self.accounting) + context

    def fraction_of_total(self, item: Item, mode: Mode) -> float:
        """The fraction of total memory one instance claims up front (0 for other allocators)."""
        if GREEDY_BASIS.get(item.framework) != "total":
            return 0.0
        return mode.memory_fraction if mode.memory_fraction is not None else default_fraction(item.framework, self.accounting)


def default_fraction(framework: str, acc: Accounting) -> float:
    """The fraction a greedy framework takes when it is not set (from the project's accounting)."""
    defaults: dict[str, float] = {
        "vllm": getattr(acc, "vllm_default_fraction", 0.9),
        "sglang": getattr(acc, "sglang_default_fraction", 0.9),
        "tensorrt_llm": getattr(acc, "tensorrt_llm_default_fraction", 0.9),
        "tensorflow": 1.0,
    }
    return defaults.get(framework, 1.0)


def reserve_gb(framework: str, weights: float, capacity: float, context: float, mode: Mode, acc: Accounting) -> float:
    """GiB a greedy allocator reserves per instance beyond its weights (README, "How memory is counted")."""
    basis = GREEDY_BASIS.get(framework)
    if basis is None:
        return 0.0
    if basis == "arena":
        return max(0.0, mode.memory_limit_gb - weights) if mode.memory_limit_gb is not None else 0.0
    fraction = mode.memory_fraction if mode.memory_fraction is not None else default_fraction(framework, acc)
    if basis == "total":
        return max(0.0, fraction * capacity - weights)
    return max(0.0, fraction * (capacity - weights - context))


def units_from_facts(facts: Any) -> dict[str, Unit]:
    """The units that host models, with the capacity the rules judge with."""
    units: dict[str, Unit] = {}
    for unit, fact in zip(facts.units, facts.gpus):
        if not unit.hosts_models:
            continue
        known = bool(fact["capacity_known"])
        units[unit.id] = Unit(
            id=unit.id,
            parent=unit.parent,
            kind=unit.kind,
            sharing=unit.sharing,
            capacity_gb=float(fact["capacity_gb"]) if known else None,
            usable_gb=float(fact["usable_gb"]) if known else None,
        )
    return units


def build_problem(plan: ServingPlan, facts: Any, accounting: Accounting, *, move: bool) -> Problem:
    units = units_from_facts(facts)
    items = [_item(i, model, units, move) for i, model in enumerate(plan.models)]
    problem = Problem(
        plan=plan,
        accounting=accounting,
        units=units,
        items=items,
        move=move,
        budget_gb={u.id: u.usable_gb for u in units.values() if u.usable_gb is not None},
    )
    options = sum(len(item.allowed) for item in items) or 1
    # Fractions on a grid as fine as the problem's size allows: 0.01 on small plans.
    steps = max(3, min(100, MAX_FRACTION_OPTIONS // options))
    for item, model in zip(items, plan.models):
        for unit_id in item.allowed:
            item.modes[unit_id] = _modes(model, item, units[unit_id], accounting, steps)
    return problem


def _item(index: int, model: Model, units: dict[str, Unit], move: bool) -> Item:
    current = tuple(u for u in model.placed_on if u in units)
    spans = len(model.placed_on) > 1
    critical = model.latency_critical
    instances = model.instances
    if critical:
        # Never below what it has; above it only where the plan allows more.
        lo = max(instances, model.instances_min or 0, 1)
        hi = max(lo, model.instances_max if model.instances_max is not None else lo)
    else:
        lo = max(model.instances_min if model.instances_min is not None else 1, 1)
        hi = model.instances_max if model.instances_max is not None else max(instances, lo)
        hi = max(hi, lo)
    droppable = not critical and not model.instances_min
    if spans:
        allowed: tuple[str, ...] = current if len(current) == len(model.placed_on) else ()
    elif current and (not move or model.pinned):
        allowed = current
    else:
        # Unplaced (or placed on something the plan lacks), or free to move: any unit
        # whose capacity is known, and the one it is on now.
        allowed = tuple(u.id for u in units.values() if u.capacity_gb is not None or u.id in current)
    return Item(
        index=index,
        name=model.name,
        critical=critical,
        framework=model.framework,
        weights=model.gpu_gb or 0.0,
        memory_known=model.gpu_gb is not None or GREEDY_BASIS.get(model.framework) == "total",
        current_units=current,
        instances=instances,
        lo=lo,
        hi=hi,
        droppable=droppable,
        allowed=allowed,
        spans=spans,
        throughput_rps=model.throughput_rps,
        expected_rps=model.expected_rps,
    )


#: How many greedy-fraction options a plan offers the solver in all (see `build_problem`).
MAX_FRACTION_OPTIONS = 4000


def _modes(model: Model, item: Item, unit: Unit, acc: Accounting, steps: int = 3) -> list[Mode]:
    """The memory settings the solver may choose for `model` on `unit`, the input's first."""
    basis = GREEDY_BASIS.get(model.framework)
    if basis is None:
        return [Mode(model.memory_fraction, model.memory_limit_gb, changed=False)]
    if basis == "arena":
        if model.memory_limit_gb is not None:
            return [Mode(None, model.memory_limit_gb, changed=False)]
        modes = [Mode(None, None, changed=False, alone_only=True)]
        if item.weights > 0:  # bound the arena at what one instance declares
            modes.append(Mode(None, _round_up(item.weights, 2), changed=True))
        return modes
    current = model.memory_fraction
    default = default_fraction(model.framework, acc)
    modes = [Mode(current, None, changed=False, alone_only=current is None)]
    top = current if current is not None else default
    candidates: list[float] = []
    if current is None:
        candidates.append(top)  # the same fraction, said explicitly
    capacity = unit.capacity_gb
    if capacity:
        if basis == "total":
            if item.weights > 0:
                # Never below what one instance declares: the model could not start.
                low = min(1.0, _round_up(item.weights / capacity, 2))
                candidates += [_round_up(low + (top - low) * k / steps, 2) for k in range(steps)]
        else:  # a fraction of the memory left free after its weights: a KV cache
            candidates += [_round_up(top * k / steps, 2) for k in range(1, steps)]
    seen = {current}
    for fraction in candidates:
        if fraction in seen or not 0 < fraction <= 1 or (basis == "total" and fraction > top):
            continue
        seen.add(fraction)
        modes.append(Mode(fraction, None, changed=True))
    return modes


def _round_up(value: float, digits: int) -> float:
    scale = 10**digits
    return float(math.ceil(value * scale - 1e-9) / scale)

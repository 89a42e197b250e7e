"""Protection facts: what arbitrates between a latency-critical model and its bulk neighbours.

A latency-critical model is protected from the bulk models on its GPU (or MIG slice)
only by a mechanism that really arbitrates between them (docs/PROTECTION.md has the
sources):

- **one serving process** (`server`): the server's scheduler orders its models'
  work, so their `priority` values count (Triton: rate-limiter priorities, which act
  only with declared resources and `--rate-limit=execution_count`; readers keep a
  priority only where it acts);
- **compute limits** between processes: MPS `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE` or
  HAMi `gpucores` (`caps.compute_pct`). They are limits, not reservations: a critical
  model is left what the other processes' limits do not take;
- **MIG**: different slices are different units, so they are never neighbours here;
- **nothing**: processes time-sliced on one GPU (or MPS clients without a limit) get
  no priority between them, whatever their Kubernetes `priorityClassName`.

These functions only read models already placed on their units; `policy.facts` calls
them and stores what they return in the fact dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Protocol, Sequence

#: Model facts this module fills in (for latency-critical models; neutral for the others).
MODEL_FACTS: tuple[str, ...] = (
    "server_bulk",
    "best_server_bulk_priority",
    "best_server_bulk_name",
    "bulk_apart",
    "bulk_apart_unlimited",
    "arbitration",
    "guaranteed_compute_pct",
)
#: GPU (and MIG slice) facts this module fills in.
GPU_FACTS: tuple[str, ...] = (
    "bulk_apart",
    "bulk_apart_unlimited",
    "bulk_apart_unpinned",
    "arbitration",
    "compute_limits",
    "critical_min_compute_pct",
    "critical_min_compute_name",
)

#: How a critical model's GPU time is arbitrated against its bulk neighbours.
ALONE = "alone"  # no bulk model shares its units (another GPU, or none at all)
MIG = "MIG"  # alone on MIG slices: whatever runs on the other slices is isolated in hardware
SERVER = "server"  # every bulk neighbour runs in its own serving process
LIMITS = "compute limits"  # bulk models in other processes all have a compute limit
NOTHING = "nothing"  # some bulk model in another process runs without a limit


class ModelLike(Protocol):
    """What these functions read of a placed model (`policy.facts._ModelView`)."""

    name: str
    critical: bool
    server: str
    priority: int
    compute_pct: float | None
    pinned_memory_gb: float | None


#: Names listed in a model's protection facts (the rest are counted): a latency-critical
#: model beside thousands of bulk models gets a few names, not a copy of its unit.
LISTED = 10


@dataclass
class _Side:
    """What one serving process's latency-critical models see on a unit."""

    same: list[str]  # bulk models in that process, sorted, the first LISTED
    best: Any  # the bulk model of that process with the best priority (the first on ties)
    apart: list[str]  # bulk models in other processes, sorted, the first LISTED
    unlimited: list[str]  # those of them without a compute limit, sorted, the first LISTED


class UnitProtection:
    """Per-process aggregates of the models on one unit, each model once."""

    # A plain class with slots: one is made for every unit of every plan judged.
    __slots__ = ("bulk", "limit_by_server", "limit_sum", "_sides", "_by_name", "_by_server", "_unlimited")

    def __init__(self) -> None:
        self.bulk: list[Any] = []
        self.limit_by_server: dict[str, float] = {}
        self.limit_sum = 0.0
        self._sides: dict[str, _Side] = {}
        self._by_name: list[Any] | None = None  # the bulk models sorted by name
        self._by_server: dict[str, list[Any]] = {}
        self._unlimited: list[Any] = []  # those without a compute limit

    def side(self, server: str) -> _Side:
        """The bulk models as a model of `server` sees them, computed once per process.

        All processes together cost O(bulk log bulk + processes × LISTED): the names apart
        from a process are the first LISTED of the sorted bulk names that are not its own,
        and skipping its own costs at most its own count.
        """
        found = self._sides.get(server)
        if found is not None:
            return found
        if self._by_name is None:
            self._by_name = sorted(self.bulk, key=_NAME)
            self._unlimited = [m for m in self._by_name if m.compute_pct is None]
            for m in self._by_name:
                self._by_server.setdefault(m.server, []).append(m)
        same = self._by_server.get(server, [])
        best = None
        for m in same:
            if best is None or m.priority < best.priority:
                best = m
        apart = _first_apart(self._by_name, server)
        unlimited = _first_apart(self._unlimited, server)
        found = self._sides[server] = _Side([m.name for m in same[:LISTED]], best, apart, unlimited)
        return found


_NAME = attrgetter("name")


def _first_apart(models: list[Any], server: str) -> list[str]:
    """The names of the first LISTED of `models` that run in another process than `server`."""
    names: list[str] = []
    for m in models:
        if m.server != server:
            names.append(m.name)
            if len(names) == LISTED:
                break
    return names


def unit_protection(models: Sequence[ModelLike], fact: dict[str, Any]) -> UnitProtection:
    """The unit's protection facts, written into `fact`; `models` holds each model here once."""
    agg = UnitProtection()
    critical: list[ModelLike] = []
    bulk = agg.bulk
    limits: list[str] = []
    limit_by_server = agg.limit_by_server
    limit_sum = 0.0
    for m in models:
        pct = m.compute_pct
        if pct is not None:
            limit_by_server[m.server] = limit_by_server.get(m.server, 0.0) + pct
            limit_sum += pct
            limits.append(f"{m.name} {_pct_text(pct)} %")
        if m.critical:
            critical.append(m)
        else:
            bulk.append(m)
    agg.limit_sum = limit_sum
    fact["compute_limits"] = limits
    if not critical or not bulk:
        fact["bulk_apart"] = []
        fact["bulk_apart_unlimited"] = []
        fact["bulk_apart_unpinned"] = []
        fact["arbitration"] = ALONE
    else:
        servers = {m.server for m in critical}
        apart = bulk if len(servers) > 1 else [m for m in bulk if m.server not in servers]
        unlimited = [m.name for m in apart if m.compute_pct is None]
        fact["bulk_apart"] = [m.name for m in apart]
        fact["bulk_apart_unlimited"] = unlimited
        fact["bulk_apart_unpinned"] = [m.name for m in apart if m.pinned_memory_gb is None]
        fact["arbitration"] = SERVER if not apart else NOTHING if unlimited else LIMITS
    worst, worst_name = 100.0, ""
    for m in critical:
        left = guaranteed_compute_pct(m, agg)
        if left < worst or not worst_name:
            worst, worst_name = left, m.name
    fact["critical_min_compute_pct"] = worst
    fact["critical_min_compute_name"] = worst_name
    return agg


#: `format(pct, "g")` of the compute shares seen, which repeat across units and plans.
_PCT_TEXT: dict[float, str] = {}


def _pct_text(pct: float) -> str:
    """`f"{pct:g}"`, remembered for the few hundred shares a cluster uses. Shares are
    validated to be above 0, so -0.0 and 0.0 (equal keys, different text) never meet here."""
    text = _PCT_TEXT.get(pct)
    if text is None:
        text = format(pct, "g")
        if len(_PCT_TEXT) < 1024 and pct > 0:
            _PCT_TEXT[pct] = text
    return text


def guaranteed_compute_pct(model: ModelLike, agg: UnitProtection) -> float:
    """The compute share a model keeps when every other process here uses its whole limit.

    MPS active-thread percentages (and HAMi gpucores) cap each process; they reserve
    nothing. So a model is sure of its own limit only as far as the limits of the
    processes beside it leave room: min(own, 100 − Σ their limits). Processes without
    a limit are left out here (they can take everything; `isolation` reports them).
    """
    own = model.compute_pct if model.compute_pct is not None else 100.0
    others = agg.limit_sum - agg.limit_by_server.get(model.server, 0.0)
    return max(0.0, min(own, 100.0 - others))


def model_protection(model: ModelLike, units: Sequence[UnitProtection], fact: dict[str, Any], *, on_mig: bool = False) -> None:
    """A model's protection facts over the units it runs on (all MIG slices: `on_mig`), written into `fact`."""
    if not model.critical:
        bulk_protection(model, fact)
        return
    sides = [unit.side(model.server) for unit in units]
    if len(sides) == 1:
        side = sides[0]
        same, apart, unlimited, best = side.same, side.apart, side.unlimited, side.best
    else:  # tensor parallel: what any of its units holds
        same = sorted({n for side in sides for n in side.same})[:LISTED]
        apart = sorted({n for side in sides for n in side.apart})[:LISTED]
        unlimited = sorted({n for side in sides for n in side.unlimited})[:LISTED]
        best = None
        for side in sides:
            if side.best is not None and (best is None or side.best.priority < best.priority):
                best = side.best
    fact["server_bulk"] = same
    fact["best_server_bulk_priority"] = best.priority if best else 0
    fact["best_server_bulk_name"] = best.name if best else ""
    fact["bulk_apart"] = apart
    fact["bulk_apart_unlimited"] = unlimited
    alone = MIG if on_mig else ALONE
    fact["arbitration"] = alone if not same and not apart else NOTHING if unlimited else LIMITS if apart else SERVER
    fact["guaranteed_compute_pct"] = min([guaranteed_compute_pct(model, unit) for unit in units], default=100.0)


def bulk_protection(model: ModelLike, fact: dict[str, Any]) -> None:
    """The protection facts of a model that is not latency-critical: neutral, but its own compute share."""
    fact["server_bulk"] = []
    fact["best_server_bulk_priority"] = 0
    fact["best_server_bulk_name"] = ""
    fact["bulk_apart"] = []
    fact["bulk_apart_unlimited"] = []
    fact["arbitration"] = ""
    fact["guaranteed_compute_pct"] = 100.0 if model.compute_pct is None else model.compute_pct

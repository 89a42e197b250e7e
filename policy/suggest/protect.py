"""Protection for a placement: priorities, rate limits and queues, caps, isolation.

Given where every model runs, this sets what protects the latency-critical models
(see docs/SUGGEST.md for the values and their sources). Each unit has a level, raised
when the linter still finds the unit unsafe at the level below:

| level | queue timeout (share of the SLA) | compute kept by critical models | time-sliced GPU shared across servers |
|---|---|---|---|
| 0 | a timeout within the SLA is kept; a new one is 50 % | 50 % | bulk models get compute caps |
| 1 | 50 % | 50 % | the GPU switches to MPS with those caps |
| 2 | 25 % | 70 % | MPS |
| 3 | 10 % | 90 % | MPS |

Level 0 keeps what the input has wherever it may pass (fewer changes); higher levels
tighten it only where the rules asked for more.

Nothing here decides whether the result is safe: the rules do, on the whole plan.
"""

from __future__ import annotations

import math
from typing import Any

from ..plan import Model, ServingPlan
from .changes import Edits
from .problem import Unit

MAX_LEVEL = 3
TIMEOUT_SHARE = (0.5, 0.5, 0.25, 0.1)
CRITICAL_COMPUTE_PCT = (50.0, 50.0, 70.0, 90.0)
#: Concurrency per instance given to a latency-critical model with no measured throughput.
CONCURRENCY_PER_INSTANCE = 8
#: Queue depth per unit of concurrency.
QUEUE_PER_CONCURRENCY = 2
#: Batch size a bulk model is capped at when it has no cap.
BULK_MAX_BATCH_SIZE = 8


def effective_priority(model: Model, edits: Edits) -> int:
    """Triton's reading: unset and 0 both mean 1, the highest."""
    value = edits.models.get(model.name, {}).get("priority", model.priority)
    return value if isinstance(value, int) and value > 1 else 1


def protect(plan: ServingPlan, units: dict[str, Unit], levels: dict[str, int], edits: Edits) -> None:
    """Record in `edits` the protection settings for `plan` as placed."""
    on_unit: dict[str, list[Model]] = {}
    for model in plan.models:
        if model.instances == 0:
            continue
        for unit_id in model.placed_on:
            if unit_id in units:
                on_unit.setdefault(unit_id, []).append(model)
    sharing = {unit_id: unit.sharing for unit_id, unit in units.items()}

    # Isolation: critical and bulk models in different servers on one time-sliced GPU.
    apart: set[str] = set()
    for unit_id, models in on_unit.items():
        critical = [m for m in models if m.latency_critical]
        bulk = [m for m in models if not m.latency_critical]
        servers = {m.server or "" for m in models}
        if not critical or not bulk or len(servers) == 1 or sharing[unit_id] != "time-slicing":
            continue
        apart.add(unit_id)
        unit = units[unit_id]
        if levels.get(unit_id, 0) >= 1 and unit.kind == "gpu":
            edits.set(
                "gpu",
                unit.parent,
                "sharing",
                unit.sharing,
                "mps",
                "isolation",
                f"{', '.join(m.name for m in critical)} and bulk {', '.join(m.name for m in bulk)} run in different "
                "servers: priorities do not arbitrate between processes, so the GPU runs them under MPS with "
                "compute limits on the bulk models",
            )
            sharing[unit_id] = "mps"

    level_of: dict[str, int] = {}
    neighbours: dict[str, list[Model]] = {}
    units_of: dict[str, list[str]] = {}
    for unit_id, models in on_unit.items():
        for model in models:
            level_of[model.name] = max(level_of.get(model.name, 0), levels.get(unit_id, 0))
            units_of.setdefault(model.name, []).append(unit_id)
            known = neighbours.setdefault(model.name, [])
            known.extend(m for m in models if m.name != model.name and m not in known)

    for model in plan.models:
        if model.latency_critical and model.instances > 0:
            _protect_critical(model, min(level_of.get(model.name, 0), MAX_LEVEL), edits)
    for model in plan.models:
        if model.latency_critical or model.instances == 0:
            continue
        critical = [m for m in neighbours.get(model.name, []) if m.latency_critical]
        if critical:
            _cap_bulk(model, critical, edits)
    for unit_id, models in on_unit.items():
        if sharing[unit_id] == "mps" or unit_id in apart:
            _compute_shares(unit_id, models, min(levels.get(unit_id, 0), MAX_LEVEL), edits)


def _protect_critical(model: Model, level: int, edits: Edits) -> None:
    name = model.name
    rule_p = "latency-critical-priority"
    if model.priority is None:
        edits.set("model", name, "priority", None, 1, rule_p, f"{name} is latency-critical: priority 1, the highest")
    limit: dict[str, Any] = dict(model.rate_limit or {})
    rule_r, rule_q = "latency-critical-rate-limit", "latency-critical-queue"
    instances = model.instances
    if limit.get("enabled") is False:
        edits.set(
            "model",
            name,
            "rate_limit.enabled",
            False,
            True,
            rule_r,
            f"{name}'s rate limit is switched off on its server: run tritonserver with --rate-limit=execution_count",
        )
    if limit.get("max_rps") is None and limit.get("max_concurrency") is None:
        if model.throughput_rps:
            rps = round(instances * model.throughput_rps, 1)
            edits.set(
                "model",
                name,
                "rate_limit.max_rps",
                None,
                rps,
                rule_r,
                f"{name} is latency-critical: admit what its {instances} instance(s) serve "
                f"({instances} × {model.throughput_rps:g} rps)",
            )
            limit["max_rps"] = rps
        else:
            batch = (model.caps or {}).get("max_batch_size") or CONCURRENCY_PER_INSTANCE
            concurrency = instances * batch
            edits.set(
                "model",
                name,
                "rate_limit.max_concurrency",
                None,
                concurrency,
                rule_r,
                f"{name} is latency-critical: at most {concurrency} requests at once ({instances} instance(s) × "
                f"{batch}); set throughput_rps from a perf_analyzer run to limit by rate instead",
            )
            limit["max_concurrency"] = concurrency
    timeout = limit.get("queue_timeout_ms")
    if model.sla_ms is not None:
        # With a declared service time the queue may take what computing leaves of the
        # SLA; without one, a share of it. Higher levels take less.
        service = getattr(model, "service_ms", None)
        if isinstance(service, (int, float)) and 0 < service < model.sla_ms:
            factor = (1.0, 1.0, 0.5, 0.2)[level]
            bound = math.floor((model.sla_ms - service) * factor * 10) / 10
            why = f"its {model.sla_ms:g} ms SLA minus {service:g} ms to compute" + ("" if factor == 1.0 else f", × {factor:g}")
        else:
            share = TIMEOUT_SHARE[level]
            bound = math.floor(model.sla_ms * share * 10) / 10
            why = f"{share:.0%} of its {model.sla_ms:g} ms SLA"
        if timeout is None or timeout > (model.sla_ms if level == 0 else bound):
            edits.set(
                "model",
                name,
                "rate_limit.queue_timeout_ms",
                timeout,
                bound,
                rule_q,
                f"a request may wait at most {bound:g} ms ({why}), leaving {model.sla_ms - bound:g} ms to compute",
            )
            timeout = bound
    if not limit.get("max_queue"):
        if limit.get("max_rps") and timeout:
            depth = max(1, math.ceil(limit["max_rps"] * timeout / 1000))
            why = f"what {limit['max_rps']:g} rps drains within the {timeout:g} ms queue timeout"
        else:
            concurrency = limit.get("max_concurrency") or instances * CONCURRENCY_PER_INSTANCE
            depth = QUEUE_PER_CONCURRENCY * concurrency
            why = f"{QUEUE_PER_CONCURRENCY} × its concurrency of {concurrency}"
        edits.set(
            "model",
            name,
            "rate_limit.max_queue",
            limit.get("max_queue"),
            depth,
            rule_q,
            f"bound {name}'s queue at {depth} requests ({why}); 0 or unset is unbounded",
        )
    if limit.get("timeout_action") != "reject":
        edits.set(
            "model",
            name,
            "rate_limit.timeout_action",
            limit.get("timeout_action"),
            "reject",
            rule_q,
            "reject at the queue timeout: a delayed request may wait indefinitely and miss the SLA anyway",
        )


def _cap_bulk(model: Model, critical: list[Model], edits: Edits) -> None:
    name = model.name
    worst = max(effective_priority(m, edits) for m in critical)
    if effective_priority(model, edits) <= worst:
        edits.set(
            "model",
            name,
            "priority",
            model.priority,
            worst + 1,
            "latency-critical-priority",
            f"bulk {name} below latency-critical {', '.join(m.name for m in critical)} (priority {worst})",
        )
    caps = model.caps or {}
    limit = model.rate_limit or {}
    rate_limited = limit.get("enabled", True) and (limit.get("max_rps") is not None or limit.get("max_concurrency") is not None)
    if caps.get("max_batch_size") is None and caps.get("compute_pct") is None and not rate_limited:
        edits.set(
            "model",
            name,
            "caps.max_batch_size",
            None,
            BULK_MAX_BATCH_SIZE,
            "bulk-capped",
            f"bulk {name} shares a GPU with latency-critical {', '.join(m.name for m in critical)}: a batch of at "
            f"most {BULK_MAX_BATCH_SIZE} bounds how long it holds the GPU",
        )


def _compute_shares(unit_id: str, models: list[Model], level: int, edits: Edits) -> None:
    """Compute limits on the bulk models (MPS active thread %) that leave the critical ones theirs."""
    critical = [m for m in models if m.latency_critical]
    bulk = [m for m in models if not m.latency_critical]
    if not critical or not bulk:
        return
    keep = CRITICAL_COMPUTE_PCT[level]
    critical_pcts = [(m.caps or {}).get("compute_pct") for m in critical]
    if all(p is not None for p in critical_pcts):
        keep = max(keep, float(sum(p for p in critical_pcts if p is not None)))
    share = max(1.0, math.floor((100.0 - keep) / len(bulk)))
    for model in bulk:
        current = edits.models.get(model.name, {}).get("caps.compute_pct", (model.caps or {}).get("compute_pct"))
        if current is None or current > share:
            edits.set(
                "model",
                model.name,
                "caps.compute_pct",
                (model.caps or {}).get("compute_pct"),
                share,
                "compute-share",
                f"on {unit_id} the bulk models {', '.join(m.name for m in bulk)} get {share:g} % of compute each "
                f"(MPS active thread percentage), leaving {', '.join(m.name for m in critical)} "
                f"{100 - share * len(bulk):g} %",
            )


def apply(plan: ServingPlan, edits: Edits) -> ServingPlan:
    """The plan with `edits` made."""
    models = []
    for model in plan.models:
        fields = edits.models.get(model.name)
        if fields and fields.get("removed"):
            continue
        if not fields:
            models.append(model)
            continue
        update: dict[str, Any] = {}
        for path, value in fields.items():
            head, _, tail = path.partition(".")
            if tail:
                block = dict(update.get(head) or getattr(model, head) or {})
                block[tail] = value
                update[head] = block
            else:
                update[head] = value
        if "gpu" in update and model.gpus is not None:
            update["gpus"] = None
        models.append(model.model_copy(update=update))
    gpus = [gpu.model_copy(update=edits.gpus[gpu.id]) if gpu.id in edits.gpus else gpu for gpu in plan.gpus]
    return plan.model_copy(update={"models": models, "gpus": gpus})

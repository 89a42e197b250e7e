"""Properties of every suggestion, over generated plans small enough to brute-force.

- every suggestion lints clean with the same rules;
- it keeps every latency-critical model, with at least the instances it had;
- it commits as much memory as the best safe plan found by trying every placement and
  instance count (each judged by the linter);
- a plan that already passes comes back unchanged, and so does a suggestion run again.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.api import Linter
from policy.plan import ServingPlan
from policy.source import PlanSource
from policy.suggest.changes import Edits
from policy.suggest.planner import suggest_source
from policy.suggest.problem import build_problem
from policy.suggest.protect import MAX_LEVEL, apply, protect

LINTER = Linter()


@st.composite
def plans(draw: Any) -> tuple[ServingPlan, bool]:
    n_gpus = draw(st.integers(1, 2))
    gpus = [{"id": f"gpu{g}", "memory_gb": draw(st.sampled_from([16, 24, 40, 80]))} for g in range(n_gpus)]
    models = []
    for m in range(draw(st.integers(1, 3))):
        critical = draw(st.booleans())
        model: dict[str, Any] = {
            "name": f"model{m}",
            "framework": "pytorch",
            "gpu": f"gpu{draw(st.integers(0, n_gpus - 1))}",
            "gpu_gb": float(draw(st.integers(1, 30))),
            "latency_critical": critical,
            "instances": draw(st.integers(1, 2)),
        }
        if draw(st.booleans()):
            model["instances_max"] = model["instances"] + draw(st.integers(0, 1))
        if draw(st.booleans()):
            model["sla_ms"] = float(draw(st.sampled_from([20, 200])))
        if draw(st.booleans()):  # some already protected
            model["priority"] = 1 if critical else 3
            model["rate_limit"] = {"max_concurrency": 4, "max_queue": 8, "queue_timeout_ms": 5, "timeout_action": "reject"}
        models.append(model)
    plan = ServingPlan.model_validate({"metadata": {"name": "generated"}, "gpus": gpus, "models": models})
    return plan, draw(st.booleans())


def _judge(plan: ServingPlan) -> tuple[bool, float]:
    report = LINTER.lint_sources([PlanSource(plan)])
    facts = report.plans[0].facts
    assert facts is not None
    return not report.failed("error"), sum(g["committed_gb"] for g in facts.gpus)


def brute_force(plan: ServingPlan, move: bool) -> float | None:
    """The most GiB any safe plan commits, trying every placement and instance count."""
    judged = LINTER.lint_sources([PlanSource(plan)]).plans[0]
    problem = build_problem(plan, judged.facts, LINTER.config.accounting, move=move)
    per_model = []
    for item in problem.items:
        options: list[tuple[str, int] | None] = [(u, n) for u in item.allowed for n in range(item.lo, item.hi + 1)]
        if item.droppable:
            options.append(None)
        per_model.append(options)
    best: float | None = None
    for combination in itertools.product(*per_model):
        edits = Edits()
        for item, option in zip(problem.items, combination):
            model = plan.models[item.index]
            if option is None:
                edits.set("model", item.name, "removed", False, True, "memory-fit", "")
                continue
            unit, count = option
            edits.set("model", item.name, "gpu", model.gpu, unit, "placement", "")
            edits.set("model", item.name, "instances", model.instances, count, "memory-fit", "")
        placed = apply(plan, edits)
        for level in range(MAX_LEVEL + 1):
            protection = Edits()
            protect(placed, problem.units, dict.fromkeys(problem.units, level), protection)
            safe, committed = _judge(apply(placed, protection))
            if safe:
                best = committed if best is None else max(best, committed)
                break
    return best


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_suggestions_lint_clean_keep_critical_models_and_reach_the_optimum(case: tuple[ServingPlan, bool]) -> None:
    plan, move = case
    input_safe, _ = _judge(plan)
    result = suggest_source(PlanSource(plan), LINTER, move=move, time_limit=5.0, workers=1)
    if input_safe:
        assert result.status == "safe" and result.changes == [] and result.plan is plan
        return
    optimum = brute_force(plan, move)
    if optimum is None:
        assert result.status == "impossible" and result.reasons
        return
    assert result.status == "changed", result.reasons
    safe, committed = _judge(result.plan)
    assert safe
    kept = {m.name: m for m in result.plan.models}
    for model in plan.models:
        if model.latency_critical:
            assert model.name in kept and kept[model.name].instances >= model.instances
            assert kept[model.name].latency_critical
    assert committed == pytest.approx(optimum, abs=0.01)
    again = suggest_source(PlanSource(result.plan), LINTER, move=move, time_limit=5.0, workers=1)
    assert again.status == "safe" and again.changes == []

"""Suggest benchmark: time and utilization of `gpuadmit suggest --move` on generated fleets.

For fleets of 10, 20, 100 and 1,000 models (1, 4, 8 and 64 H100-80GB GPUs), compares:

- **first-fit-decreasing** (what a person does by hand): latency-critical models first,
  then the others, largest first, each on the first GPU with room for all the instances
  it may have (`instances_max`), else on the GPU with room for most, then the same
  protection settings;
- **suggest**: the CP-SAT plan within the default 10 s budget, with the gap it reports;
- **proven optimum**: the same model solved without a time limit that matters (small
  fleets), or the solver's upper bound (large ones).

Utilization is GiB committed (instances, greedy reservations and CUDA contexts, as the
linter counts them) over GiB usable. Every plan reported as safe was linted clean.

    python bench/suggest_bench.py [--sizes 10 20 100 1000] [--shape small|large] [--time-limit 10] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe  # noqa: E402
from policy.api import Linter  # noqa: E402
from policy.plan import ServingPlan  # noqa: E402
from policy.source import PlanSource  # noqa: E402
from policy.suggest.changes import Edits  # noqa: E402
from policy.suggest.planner import suggest_source  # noqa: E402
from policy.suggest.problem import build_problem  # noqa: E402
from policy.suggest.protect import apply, protect  # noqa: E402
from policy.suggest.solver import solve  # noqa: E402

GPUS_FOR = {10: 1, 20: 4, 100: 8, 1000: 64}


#: Large models: the GPUs a fleet of that many gets, so that it asks for about 1.5-3 times their memory.
LARGE_GPUS_FOR = {10: 2, 20: 4, 100: 24, 1000: 64}


def generate_fleet(n_models: int, seed: int = 7, shape: str = "small") -> ServingPlan:
    """A fleet as teams write it before a suggestion: models piled onto GPUs, partly unprotected.

    One model in eight is latency-critical (4-20 GiB, one instance); the others are
    bulk models of 1-6 GiB with 1-2 instances and room for up to 3. The fleet asks for
    about 1.1-1.4 times the memory it has, so something must give.
    """
    rng = random.Random(seed)
    large = shape == "large"
    n_gpus = (LARGE_GPUS_FOR if large else GPUS_FOR).get(n_models, max(1, n_models // 16))
    gpus = [{"id": f"gpu{g}", "product": "H100-SXM-80GB"} for g in range(n_gpus)]
    models: list[dict[str, Any]] = []
    for m in range(n_models):
        critical = m % 8 == 0
        model: dict[str, Any] = {
            "name": f"m{m:04d}",
            "framework": "pytorch",
            "gpu": f"gpu{rng.randrange(n_gpus)}",
        }
        if critical:
            model.update(
                gpu_gb=float(rng.randint(10, 40) if large else rng.randint(4, 20)),
                latency_critical=True,
                sla_ms=float(rng.choice([50, 200, 500])),
            )
        else:
            instances = rng.randint(1, 2)
            size = rng.randint(4, 24) if large else rng.randint(1, 6)
            model.update(gpu_gb=float(size), instances=instances, instances_max=3)
        models.append(model)
    return ServingPlan.model_validate({"metadata": {"name": f"fleet-{n_models}"}, "gpus": gpus, "models": models})


def first_fit_decreasing(plan: ServingPlan, linter: Linter) -> tuple[ServingPlan, float]:
    """The hand-made plan: critical first, then largest first, each on the first GPU with room."""
    judged = linter.lint_sources([PlanSource(plan)]).plans[0]
    problem = build_problem(plan, judged.facts, linter.config.accounting, move=True)
    left = dict(problem.budget_gb)
    edits = Edits()
    order = sorted(problem.items, key=lambda i: (not i.critical, -i.weights * i.lo))
    for item in order:
        model = plan.models[item.index]
        mode = item.modes[item.allowed[0]][0]
        placed = False
        # The first GPU with room for all its instances, else the one with room for most.
        fits = []
        for unit_id in item.allowed:
            per = problem.instance_gb(item, unit_id, mode)
            fits.append((min(item.hi, int(left.get(unit_id, 0.0) // per)) if per > 0 else item.hi, unit_id, per))
        full = [f for f in fits if f[0] == item.hi]
        for fit, unit_id, per in full[:1] or sorted(fits, key=lambda f: -f[0])[:1]:
            if fit >= item.lo:
                left[unit_id] -= fit * per
                if unit_id != model.gpu:
                    edits.set("model", item.name, "gpu", model.gpu, unit_id, "placement", "first fit")
                if fit != model.instances:
                    edits.set("model", item.name, "instances", model.instances, fit, "utilization", "first fit")
                placed = True
                break
        if not placed:
            edits.set("model", item.name, "removed", False, True, "memory-fit", "no room")
    placed_plan = apply(plan, edits)
    protection = Edits()
    protect(placed_plan, problem.units, {}, protection)
    return apply(placed_plan, protection), sum(problem.budget_gb.values())


def committed(plan: ServingPlan, linter: Linter) -> tuple[float, bool]:
    report = linter.lint_sources([PlanSource(plan)])
    judged = report.plans[0]
    assert judged.facts is not None
    return sum(g["committed_gb"] for g in judged.facts.gpus), not report.failed(linter.config.fail_on)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 100, 1000])
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--optimum-limit", type=float, default=120.0, help="time to prove the optimum")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--shape",
        choices=["small", "large"],
        default="small",
        help="small: 1-20 GiB models, 1.1-1.4x oversubscribed; large: 4-40 GiB models, 1.5-3x (64 GPUs at 1,000)",
    )
    args = parser.parse_args()
    linter = Linter()
    started = time.perf_counter()
    from ortools.sat.python import cp_model  # noqa: F401 - paid once per process, reported apart

    imported = time.perf_counter() - started
    print(
        f"machine: {describe()}; fleet shape: {args.shape}; importing OR-Tools took {imported:.2f} s (once per process, not in the times below)"
    )
    print(
        "| models | GPUs | usable GiB | first-fit-decreasing | FFD time | suggest | suggest time | solver | gap "
        "| optimum (or bound) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for size in args.sizes:
        plan = generate_fleet(size, args.seed, args.shape)
        started = time.perf_counter()
        ffd_plan, usable = first_fit_decreasing(plan, linter)
        ffd_seconds = time.perf_counter() - started
        ffd_gb, ffd_safe = committed(ffd_plan, linter)

        started = time.perf_counter()
        result = suggest_source(PlanSource(plan), linter, move=True, time_limit=args.time_limit)
        seconds = time.perf_counter() - started
        got_gb, safe = committed(result.plan, linter)
        assert result.status == "changed" and safe, result.reasons

        judged = linter.lint_sources([PlanSource(plan)]).plans[0]
        problem = build_problem(plan, judged.facts, linter.config.accounting, move=True)
        proof = solve(problem, time_limit=args.optimum_limit)
        best = proof.committed_gb if proof.status == "optimal" else proof.bound_gb
        label = "optimum =" if proof.status == "optimal" else "bound ≤"
        print(
            f"| {size:,} | {len(plan.gpus)} | {usable:,.1f} "
            f"| {ffd_gb:,.1f} GiB ({100 * ffd_gb / usable:.1f} %){'' if ffd_safe else ' unsafe'} | {ffd_seconds:.2f} s "
            f"| {got_gb:,.1f} GiB ({100 * got_gb / usable:.1f} %) | {seconds:.2f} s "
            f"| {result.solver.get('status')} | {100 * result.solver.get('gap', 0):.3f} % "
            f"| {label} {best:,.1f} GiB ({100 * best / usable:.1f} %) in {proof.seconds:.1f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()

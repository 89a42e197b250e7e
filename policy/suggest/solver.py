"""Placement, instance counts and memory settings as a CP-SAT model (OR-Tools).

Variables, per model i, unit u it may use and memory mode k: `n[i,u,k]` instances and
`b[i,u,k]` (placed there in that mode). Constraints: each model on at most one unit in
one mode (tensor-parallel models on all of theirs at once); latency-critical models
always placed, within their instance range; per unit, the memory of every instance
within its budget and the greedy fractions of total memory within 1; a greedy
allocator left at its default only alone on its unit; the linter's cuts (sets of models
that were unsafe together). The objective, in order of weight: load served (where
models declare throughput and expected load), then GiB committed; then, with those at
their optimum, a short search for the fewest changes.

OR-Tools is imported here only, so `gpuadmit lint` never loads it.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from .problem import Item, Mode, Problem

MIB_PER_GIB = 1024
FRACTION_SCALE = 10_000
#: The objective counts memory in tenths of a GiB: finer steps only slow the search.
OBJECTIVE_GIB_SCALE = 10
#: Served load in tenths of a request per second.
LOAD_SCALE = 10
#: Time to look for fewer changes once utilization is proven optimal (at least; 5 % of the budget when more).
CHANGES_SECONDS = 0.5


@dataclass
class Assignment:
    """Where one model ends up: its units, instances on each, and its memory mode."""

    units: tuple[str, ...]
    instances: int
    mode: Mode


@dataclass
class Solution:
    status: str  # "optimal" | "feasible" | "infeasible" | "unknown"
    assignments: dict[str, Assignment] = field(default_factory=dict)
    objective: float = 0.0
    bound: float = 0.0
    seconds: float = 0.0
    committed_gb: float = 0.0
    served_rps: float = 0.0
    #: An upper bound on the GiB any plan commits (from the solver, or `memory_bound`).
    bound_gb: float = 0.0

    @property
    def gap(self) -> float:
        """Relative optimality gap of the objective (0 when proven optimal)."""
        if self.status == "optimal":
            return 0.0
        if self.bound == 0:
            return 0.0
        return max(0.0, (self.bound - self.objective) / abs(self.bound))


#: Above this many (model, unit, mode) options, each movable model is offered its own
#: unit, the first-fit one and a spread of others rather than every unit: a 1,000-model,
#: 64-GPU fleet then builds in about a second instead of ten. The gap is then reported
#: against a bound of the unrestricted problem.
MAX_OPTIONS = 12_000


def solve(problem: Problem, *, time_limit: float = 10.0, workers: int | None = None) -> Solution:
    from ortools.sat.python import cp_model

    started = time.perf_counter()
    model = cp_model.CpModel()
    placed: dict[tuple[int, str], list[Any]] = {}  # (item, unit) -> its b vars there
    mem_vars: dict[str, list[Any]] = {}
    mem_coefs: dict[str, list[int]] = {}
    frac_vars: dict[str, list[Any]] = {}
    frac_coefs: dict[str, list[int]] = {}
    alone: list[tuple[Any, int, str]] = []  # (b var, item index, unit) for modes that must be alone
    obj_vars: list[Any] = []  # utilization: load served, then GiB committed
    obj_coefs: list[int] = []
    chg_vars: list[Any] = []  # changes, each with its count (minimized after utilization)
    chg_coefs: list[int] = []
    choices: dict[int, list[tuple[tuple[str, ...], Mode, Any, Any]]] = {}
    served_terms: list[Any] = []
    n_changes_max = 4 * len(problem.items)
    mem_weight = n_changes_max + 1
    max_mem = sum(math.floor(b * OBJECTIVE_GIB_SCALE) for b in problem.budget_gb.values()) + 1
    load_weight = mem_weight * (max_mem + 1)

    start = greedy_start(problem)
    offered = _offered(problem, start)
    restricted = offered is not None
    for item in problem.items:
        options = _options(problem, item)
        if offered is not None and item.index in offered:
            options = [o for o in options if o[0][0] in offered[item.index]]
        if not options:
            if item.critical:
                return Solution(status="infeasible", seconds=time.perf_counter() - started)
            continue
        item_choices: list[tuple[tuple[str, ...], Mode, Any, Any]] = []
        chosen = start.get(item.index)
        chosen_option = _options(problem, item)[chosen[0]] if chosen is not None else None
        fixed_count = item.lo == item.hi
        for units, mode in options:
            k = len(item_choices)
            b = model.new_bool_var(f"b{item.index}_{k}")
            n: Any
            if fixed_count:
                n = b  # its count is lo when placed: the objective and memory scale by lo below
            else:
                n = model.new_int_var(0, item.hi, f"n{item.index}_{k}")
                model.add(n >= item.lo * b)
                model.add(n <= item.hi * b)
            scale = item.lo if fixed_count else 1
            item_choices.append((units, mode, b, n))
            for unit_id in units:
                placed.setdefault((item.index, unit_id), []).append(b)
                gib = problem.instance_gb(item, unit_id, mode)
                if unit_id in problem.budget_gb:
                    mem_vars.setdefault(unit_id, []).append(n)
                    mem_coefs.setdefault(unit_id, []).append(scale * math.ceil(gib * MIB_PER_GIB))
                fraction = problem.fraction_of_total(item, mode)
                if fraction:
                    frac_vars.setdefault(unit_id, []).append(n)
                    frac_coefs.setdefault(unit_id, []).append(scale * math.ceil(fraction * FRACTION_SCALE))
                if mode.alone_only:
                    alone.append((b, item.index, unit_id))
                obj_vars.append(n)
                obj_coefs.append(mem_weight * scale * round(gib * OBJECTIVE_GIB_SCALE))
            # Changes: another unit, another memory setting.
            # Moving a latency-critical model counts double: on ties the bulk models move.
            cost = int(mode.changed) + (2 if item.critical else 1) * int(set(units) != set(item.current_units))
            if cost:
                chg_vars.append(b)
                chg_coefs.append(-cost)
            picked = chosen_option is not None and chosen_option == (units, mode)
            model.add_hint(b, picked)
            if not fixed_count:
                model.add_hint(n, chosen[1] if chosen is not None and picked else 0)
        choices[item.index] = item_choices
        bs = [c[2] for c in item_choices]
        if item.critical or not item.droppable:
            model.add_exactly_one(bs)
        else:
            model.add_at_most_one(bs)
        if fixed_count:
            total = cp_model.LinearExpr.weighted_sum(bs, [item.lo] * len(bs))
            if item.instances != item.lo:
                chg_vars.append(model.new_constant(1))
                chg_coefs.append(-1)  # placed at lo != instances: always a change
            elif item.droppable:
                # An instance count other than the input's is one change: here, only dropping it.
                chg_vars.extend(bs)
                chg_coefs.extend([1] * len(bs))
                chg_vars.append(model.new_constant(1))
                chg_coefs.append(-1)
        else:
            total = model.new_int_var(0, item.hi, f"total{item.index}")
            model.add(total == sum(c[3] for c in item_choices))
            differs = model.new_bool_var(f"d{item.index}")
            model.add(total == item.instances).only_enforce_if(differs.Not())
            chg_vars.append(differs)
            chg_coefs.append(-1)
        if item.throughput_rps and item.expected_rps is not None:
            cap = math.floor(item.expected_rps * LOAD_SCALE)
            served = model.new_int_var(0, cap, f"s{item.index}")
            model.add(served <= total * math.floor(item.throughput_rps * LOAD_SCALE))
            served_terms.append(served)
            obj_vars.append(served)
            obj_coefs.append(load_weight)

    for unit_id, terms in mem_vars.items():
        expr = cp_model.LinearExpr.weighted_sum(terms, mem_coefs[unit_id])
        model.add(expr <= math.floor(problem.budget_gb[unit_id] * MIB_PER_GIB))
    for unit_id, terms in frac_vars.items():
        model.add(cp_model.LinearExpr.weighted_sum(terms, frac_coefs[unit_id]) <= FRACTION_SCALE)
    by_unit: dict[str, list[tuple[int, Any]]] = {}
    for (index, unit_id), bs in placed.items():
        by_unit.setdefault(unit_id, []).extend((index, b) for b in bs)
    for b, index, unit_id in alone:
        others = [ob for oi, ob in by_unit.get(unit_id, []) if oi != index]
        if others:
            model.add(sum(others) == 0).only_enforce_if(b)
    for names, unit_ids, _reason in problem.cuts:
        indices = [i.index for i in problem.items if i.name in names]
        for unit_id in unit_ids:
            terms = [b for index in indices for b in placed.get((index, unit_id), [])]
            present = {index for index in indices if placed.get((index, unit_id))}
            if len(present) == len(indices):
                model.add(sum(terms) <= len(indices) - 1)

    # Objective, lexicographic: load served, then GiB committed (one weighted sum, each
    # term dominating the next); then, with those fixed at their optimum, fewer changes.
    utilization = cp_model.LinearExpr.weighted_sum(obj_vars, obj_coefs)
    model.maximize(utilization)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, time_limit - (time.perf_counter() - started))
    solver.parameters.num_workers = workers or max(1, min(8, os.cpu_count() or 1))
    solver.parameters.random_seed = 1
    status = solver.solve(model)
    status_names = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible", cp_model.INFEASIBLE: "infeasible"}
    result = Solution(status=status_names.get(status, "unknown"), seconds=time.perf_counter() - started)
    if status == cp_model.INFEASIBLE and restricted:
        result.status = "unknown"  # infeasible among the options offered, not proven for all
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if status != cp_model.INFEASIBLE and _complete(problem, start):
            # Out of time before the search reported a plan: the first-fit plan it started
            # from is feasible, so it is the best plan found.
            return _from_start(problem, start, result)
        return result
    result.objective = solver.objective_value
    result.bound = solver.best_objective_bound
    values = {id(v): solver.value(v) for c in choices.values() for _, _, b, n in c for v in (b, n)}
    served_values = [solver.value(v) for v in served_terms]
    left = time_limit - (time.perf_counter() - started)
    if status == cp_model.OPTIMAL and chg_vars and left > 0.05:
        model.add(utilization >= round(solver.objective_value))
        model.clear_hints()  # type: ignore[no-untyped-call]
        for c in choices.values():
            for _, _, b, n in c:
                model.add_hint(b, values[id(b)])
                if n is not b:
                    model.add_hint(n, values[id(n)])
        model.maximize(cp_model.LinearExpr.weighted_sum(chg_vars, chg_coefs))
        fewer = cp_model.CpSolver()
        # A tie-breaker: a short search from the optimal plan, not a second full budget.
        fewer.parameters.max_time_in_seconds = min(left, max(CHANGES_SECONDS, 0.05 * time_limit))
        fewer.parameters.num_workers = solver.parameters.num_workers
        fewer.parameters.random_seed = 1
        if fewer.solve(model) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            values = {id(v): fewer.value(v) for c in choices.values() for _, _, b, n in c for v in (b, n)}
            served_values = [fewer.value(v) for v in served_terms]
    result.seconds = seconds = time.perf_counter() - started
    for item in problem.items:
        for units, mode, b, n in choices.get(item.index, []):
            if values[id(b)]:
                count = item.lo if item.lo == item.hi else values[id(n)]
                result.assignments[item.name] = Assignment(units, count, mode)
                result.committed_gb += sum(count * problem.instance_gb(item, u, mode) for u in units)
    result.served_rps = sum(served_values) / LOAD_SCALE
    if (
        status == cp_model.FEASIBLE
        and not served_terms
        and _complete(problem, start)
        and _placed_gb(problem, start) > result.committed_gb + 1e-6
    ):
        # Stopped before the search got back to the first-fit plan it started from.
        return _from_start(problem, start, Solution(status="feasible", seconds=seconds))
    result.bound_gb = memory_bound(problem)
    if not served_terms:
        result.bound_gb = min(result.bound_gb, result.bound / mem_weight / OBJECTIVE_GIB_SCALE)
    if restricted:
        # The bound of the restricted problem does not hold for the whole one: report the
        # gap against a bound that does (memory: every unit full, or every model at its most).
        result.status = "feasible"
        bound_gb = memory_bound(problem)
        result.objective, result.bound = result.committed_gb, bound_gb
    return result


def _complete(problem: Problem, start: dict[int, tuple[int, int]]) -> bool:
    return all(item.index in start for item in problem.items if item.critical or not item.droppable)


def _from_start(problem: Problem, start: dict[int, tuple[int, int]], result: Solution) -> Solution:
    for item in problem.items:
        chosen = start.get(item.index)
        if chosen is None:
            continue
        units, mode = _options(problem, item)[chosen[0]]
        result.assignments[item.name] = Assignment(units, chosen[1], mode)
        result.committed_gb += sum(chosen[1] * problem.instance_gb(item, u, mode) for u in units)
    result.status = "feasible"
    result.objective, result.bound = result.committed_gb, memory_bound(problem)
    result.bound_gb = result.bound
    return result


def memory_bound(problem: Problem) -> float:
    """An upper bound on the GiB any plan commits: min(all budgets, every model at its largest)."""
    most = 0.0
    for item in problem.items:
        best = 0.0
        for units, mode in _options(problem, item):
            best = max(best, item.hi * sum(problem.instance_gb(item, u, mode) for u in units))
        most += best
    return min(sum(problem.budget_gb.values()), most)


def _offered(problem: Problem, start: dict[int, tuple[int, int]]) -> dict[int, set[str]] | None:
    """For large problems, the units each movable model is offered; None: every unit."""
    total = sum(len(i.allowed) * max(1, len(next(iter(i.modes.values()), []))) for i in problem.items)
    if total <= MAX_OPTIONS:
        return None
    movable = [i for i in problem.items if not i.spans and len(i.allowed) > 1]
    if not movable:
        return None
    per_item = max(4, MAX_OPTIONS // max(1, len(movable)))
    units = sorted(problem.budget_gb, key=lambda u: -problem.budget_gb[u])
    offered: dict[int, set[str]] = {}
    for j, item in enumerate(movable):
        chosen = start.get(item.index)
        keep = set(item.current_units)
        if chosen is not None:
            keep.update(_options(problem, item)[chosen[0]][0])
        allowed = [u for u in units if u in item.allowed]
        if allowed:
            step = max(1, len(allowed) // per_item)
            for r in range(per_item):
                keep.add(allowed[(j + r * step) % len(allowed)])
        offered[item.index] = keep
    return offered


def _options(problem: Problem, item: Item) -> list[tuple[tuple[str, ...], Mode]]:
    """Where and how the model may run: (its units, a memory mode)."""
    if item.spans:
        if not item.allowed:
            return []
        first = item.allowed[0]
        return [(item.allowed, mode) for mode in item.modes.get(first, [])]
    return [((unit_id,), mode) for unit_id in item.allowed for mode in item.modes.get(unit_id, [])]


def greedy_start(problem: Problem) -> dict[int, tuple[int, int]]:
    """The better of two first-fit plans (by GiB placed): one that keeps models where they
    are when there is room, one that packs best-fit-decreasing regardless."""
    plans = [_first_fit(problem, keep=True), _first_fit(problem, keep=False)]
    return max(plans, key=lambda start: _placed_gb(problem, start))


def _placed_gb(problem: Problem, start: dict[int, tuple[int, int]]) -> float:
    total = 0.0
    for item in problem.items:
        chosen = start.get(item.index)
        if chosen is not None:
            units, mode = _options(problem, item)[chosen[0]]
            total += chosen[1] * sum(problem.instance_gb(item, u, mode) for u in units)
    return total


def _first_fit(problem: Problem, *, keep: bool) -> dict[int, tuple[int, int]]:
    """A first-fit plan: item index -> (its option's index, instances). Critical models
    first, then the largest; each on the unit it is on now when `keep` and there is room,
    else on the unit with the least room that fits it (best fit); as many instances as
    fit. It respects every constraint the solver has."""
    left = dict(problem.budget_gb)
    fraction_left: dict[str, float] = {}
    occupants: dict[str, set[str]] = {}
    alone: set[str] = set()
    cuts = [(names, units) for names, units, _ in problem.cuts]
    start: dict[int, tuple[int, int]] = {}
    order = sorted(problem.items, key=lambda i: (not i.critical, -i.weights * max(i.lo, 1)))
    for item in order:
        options = _options(problem, item)
        ranked = sorted(
            range(len(options)),
            key=lambda k: (
                keep and set(options[k][0]) != set(item.current_units),
                options[k][1].changed,
                min(left.get(u, 0.0) for u in options[k][0]),
            ),
        )
        for k in ranked:
            units, mode = options[k]
            if any(u in alone or (mode.alone_only and occupants.get(u)) for u in units):
                continue
            if any(
                item.name in names and u in cut_units and (names - {item.name}) <= occupants.get(u, set())
                for names, cut_units in cuts
                for u in units
            ):
                continue
            fraction = problem.fraction_of_total(item, mode)
            fit = item.hi
            for u in units:
                if u in left:
                    per = math.ceil(problem.instance_gb(item, u, mode) * MIB_PER_GIB) / MIB_PER_GIB
                    fit = min(fit, int((left[u] + 1e-9) // per) if per > 0 else item.hi)
                if fraction:
                    fit = min(fit, int((fraction_left.get(u, 1.0) + 1e-9) // fraction))
            if fit < item.lo:
                continue
            for u in units:
                if u in left:
                    left[u] -= fit * math.ceil(problem.instance_gb(item, u, mode) * MIB_PER_GIB) / MIB_PER_GIB
                fraction_left[u] = fraction_left.get(u, 1.0) - fit * fraction
                occupants.setdefault(u, set()).add(item.name)
                if mode.alone_only:
                    alone.add(u)
            start[item.index] = (k, fit)
            break
    return start

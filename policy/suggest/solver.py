"""Placement, instance counts and memory settings as a CP-SAT model (OR-Tools).

Variables, per model i, unit u it may use and memory mode k: `n[i,u,k]` instances and
`b[i,u,k]` (placed there in that mode). Constraints: each model on at most one unit in
one mode (tensor-parallel models on all of theirs at once); latency-critical models
always placed, within their instance range; per unit, the memory of every instance
within its budget and the greedy fractions of total memory within 1; a greedy
allocator left at its default only alone on its unit; the linter's cuts (sets of models
that were unsafe together). The objective, in order of weight: load served (where
models declare throughput and expected load), GiB committed, then fewer changes.

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
    changes: int = 0

    @property
    def gap(self) -> float:
        """Relative optimality gap of the objective (0 when proven optimal)."""
        if self.status == "optimal":
            return 0.0
        if self.bound == 0:
            return 0.0
        return max(0.0, (self.bound - self.objective) / abs(self.bound))


def solve(problem: Problem, *, time_limit: float = 10.0, workers: int | None = None) -> Solution:
    from ortools.sat.python import cp_model

    started = time.perf_counter()
    model = cp_model.CpModel()
    acc = problem.accounting
    placed: dict[tuple[int, str], list[Any]] = {}  # (item, unit) -> its b vars there
    per_unit_mem: dict[str, list[Any]] = {}
    per_unit_frac: dict[str, list[Any]] = {}
    alone: list[tuple[Any, int, str]] = []  # (b var, item index, unit) for modes that must be alone
    objective_mem: list[Any] = []
    change_terms: list[Any] = []
    n_total: dict[int, Any] = {}
    choices: dict[int, list[tuple[tuple[str, ...], Mode, Any, Any]]] = {}
    served_terms: list[Any] = []
    n_changes_max = 0

    for item in problem.items:
        options = _options(problem, item)
        if not options:
            if item.critical:
                return Solution(status="infeasible", seconds=time.perf_counter() - started)
            continue
        item_choices: list[tuple[tuple[str, ...], Mode, Any, Any]] = []
        total_terms = []
        for units, mode in options:
            b = model.new_bool_var(f"b{item.index}_{len(item_choices)}")
            n = model.new_int_var(0, item.hi, f"n{item.index}_{len(item_choices)}")
            model.add(n >= item.lo * b)
            model.add(n <= item.hi * b)
            item_choices.append((units, mode, b, n))
            total_terms.append(n)
            for unit_id in units:
                placed.setdefault((item.index, unit_id), []).append(b)
                gib = problem.instance_gb(item, unit_id, mode)
                if unit_id in problem.budget_gb:
                    per_unit_mem.setdefault(unit_id, []).append(n * math.ceil(gib * MIB_PER_GIB))
                fraction = problem.fraction_of_total(item, mode)
                if fraction:
                    per_unit_frac.setdefault(unit_id, []).append(n * math.ceil(fraction * FRACTION_SCALE))
                if mode.alone_only:
                    alone.append((b, item.index, unit_id))
                objective_mem.append(n * round(gib * OBJECTIVE_GIB_SCALE))
            # Changes: another unit, another memory setting.
            cost = int(mode.changed) + int(set(units) != set(item.current_units))
            if cost:
                change_terms.append(cost * b)
        choices[item.index] = item_choices
        bs = [c[2] for c in item_choices]
        if item.critical or not item.droppable:
            model.add_exactly_one(bs)
        else:
            model.add_at_most_one(bs)
        total = model.new_int_var(0, item.hi, f"total{item.index}")
        model.add(total == sum(total_terms))
        n_total[item.index] = total
        # An instance count other than the input's is one change.
        differs = model.new_bool_var(f"d{item.index}")
        model.add(total == item.instances).only_enforce_if(differs.Not())
        change_terms.append(differs)
        n_changes_max += 3
        if item.throughput_rps and item.expected_rps is not None:
            cap = math.floor(item.expected_rps * LOAD_SCALE)
            served = model.new_int_var(0, cap, f"s{item.index}")
            model.add(served <= total * math.floor(item.throughput_rps * LOAD_SCALE))
            served_terms.append(served)
        # The input as a hint: it is the plan with no changes.
        for units, mode, b, n in item_choices:
            here = set(units) == set(item.current_units) and not mode.changed
            model.add_hint(b, here)
            model.add_hint(n, min(max(item.instances, item.lo), item.hi) if here else 0)

    for unit_id, terms in per_unit_mem.items():
        model.add(sum(terms) <= math.floor(problem.budget_gb[unit_id] * MIB_PER_GIB))
    for terms in per_unit_frac.values():
        model.add(sum(terms) <= FRACTION_SCALE)
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

    # Objective: load served, then memory committed, then fewer changes (lexicographic by weight).
    change_weight = 1
    mem_weight = n_changes_max + 1
    max_mem = sum(math.floor(b * OBJECTIVE_GIB_SCALE) for b in problem.budget_gb.values()) + 1
    load_weight = mem_weight * (max_mem + 1)
    model.maximize(load_weight * sum(served_terms) + mem_weight * sum(objective_mem) - change_weight * sum(change_terms))

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, time_limit - (time.perf_counter() - started))
    solver.parameters.num_workers = workers or max(1, min(8, os.cpu_count() or 1))
    solver.parameters.random_seed = 1
    status = solver.solve(model)
    seconds = time.perf_counter() - started
    status_names = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible", cp_model.INFEASIBLE: "infeasible"}
    result = Solution(status=status_names.get(status, "unknown"), seconds=seconds)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return result
    result.objective = solver.objective_value
    result.bound = solver.best_objective_bound
    for item in problem.items:
        for units, mode, b, n in choices.get(item.index, []):
            if solver.boolean_value(b):
                result.assignments[item.name] = Assignment(units, solver.value(n), mode)
                result.committed_gb += sum(solver.value(n) * problem.instance_gb(item, u, mode) for u in units)
    result.served_rps = sum(solver.value(s) for s in served_terms) / LOAD_SCALE
    result.changes = sum(int(solver.value(t)) for t in change_terms)
    return result


def _options(problem: Problem, item: Item) -> list[tuple[tuple[str, ...], Mode]]:
    """Where and how the model may run: (its units, a memory mode)."""
    if item.spans:
        if not item.allowed:
            return []
        first = item.allowed[0]
        return [(item.allowed, mode) for mode in item.modes.get(first, [])]
    return [((unit_id,), mode) for unit_id in item.allowed for mode in item.modes.get(unit_id, [])]

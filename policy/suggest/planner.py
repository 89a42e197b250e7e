"""From a plan to the safe plan that uses the GPUs best, judged by the rules themselves.

1. Lint the input. A plan that passes comes back unchanged (unless `optimize`).
2. Pose placement, instance counts and memory settings as a CP-SAT problem
   (`problem.py`, `solver.py`) and solve it.
3. Set protection for that placement (`protect.py`).
4. Lint the result with the same Linter. Where it still fails, learn from the verdict and
   go back to 2: a unit the rules find over its memory gets a smaller budget (by the
   overflow they report); a unit still unsafe for other reasons gets stronger protection,
   and when none is left, its models may no longer all share a unit of that kind.
5. Stop when the plan passes, or say which constraint makes it impossible.

The rules are the judge: nothing here knows a rule by its expression, so when rules
change, suggestions follow them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..findings import FailOn, Finding
from ..verdict import decide
from ..source import PlanSource
from .changes import Change, Edits
from .problem import Item, Problem, build_problem
from .protect import MAX_LEVEL, apply, protect
from .solver import Solution, solve

if TYPE_CHECKING:
    from ..api import Linter
    from ..plan import ServingPlan
    from ..report import PlanReport

#: Rounds of solve, protect, lint before giving up.
MAX_ROUNDS = 24


@dataclass
class PlanSuggestion:
    """The suggestion for one plan."""

    source: PlanSource
    status: str  # "safe" (unchanged) | "changed" | "impossible"
    plan: ServingPlan
    changes: list[Change] = field(default_factory=list)
    #: Why no safe plan exists (status impossible).
    reasons: list[str] = field(default_factory=list)
    #: The input's findings that failed it, and what is left at the end (warnings, waived).
    input_findings: list[Finding] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    solver: dict[str, Any] = field(default_factory=dict)
    committed_gb: float = 0.0
    input_committed_gb: float = 0.0

    @property
    def name(self) -> str:
        return self.source.plan.metadata.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.name,
            "file": self.source.file,
            "status": self.status,
            "changes": [c.to_dict() for c in self.changes],
            "reasons": list(self.reasons),
            "committed_gb": round(self.committed_gb, 3),
            "input_committed_gb": round(self.input_committed_gb, 3),
            "solver": dict(self.solver),
            "remaining_findings": [f.to_dict() for f in self.findings],
        }


def _failing(report: PlanReport, fail_on: FailOn) -> list[Finding]:
    """What fails the plan, decided where every entry point decides (policy.verdict)."""
    return list(decide(report.findings, fail_on=fail_on).failing)


def _committed(report: PlanReport) -> float:
    return float(sum(g["committed_gb"] for g in report.facts.gpus)) if report.facts is not None else 0.0


def suggest_source(
    source: PlanSource,
    linter: Linter,
    *,
    move: bool = False,
    time_limit: float = 10.0,
    optimize: bool = False,
    workers: int | None = None,
) -> PlanSuggestion:
    fail_on = linter.config.fail_on
    judged = _judge(linter, source.plan, source)
    failing = _failing(judged, fail_on)
    result = PlanSuggestion(source=source, status="safe", plan=source.plan, input_findings=failing)
    result.input_committed_gb = result.committed_gb = _committed(judged)
    if not failing and not optimize:
        result.findings = list(judged.findings)
        return result
    if judged.facts is None:  # pragma: no cover - every judged plan has facts
        result.status, result.reasons = "impossible", ["the plan could not be judged"]
        return result
    problem = build_problem(source.plan, judged.facts, linter.config.accounting, move=move)
    unsolvable = _unfixable(problem)
    if unsolvable:
        result.status, result.reasons = "impossible", unsolvable
        return result

    started = time.perf_counter()
    levels: dict[str, int] = {}
    solution: Solution | None = None
    last_failing: list[Finding] = failing
    resolve: bool | None = True
    for _round in range(MAX_ROUNDS):
        if resolve:
            remaining = time_limit - (time.perf_counter() - started)
            solution = solve(problem, time_limit=max(remaining, min(1.0, time_limit)), workers=workers)
            if solution.status not in ("optimal", "feasible"):
                result.status = "impossible"
                result.reasons = explain(problem, solution)
                result.solver = _solver_info(solution, time.perf_counter() - started)
                return result
        assert solution is not None
        placement = _placement_edits(problem, solution)
        placed = apply(source.plan, placement)
        protection = Edits()
        protect(placed, problem.units, levels, protection)
        candidate = apply(placed, protection)
        verdict = _judge(linter, candidate, source)
        last_failing = _failing(verdict, fail_on)
        if not last_failing:
            result.status = "changed" if placement.changes or protection.changes else "safe"
            result.plan = candidate
            result.changes = _with_fixes([*placement.changes, *protection.changes], failing, source.plan)
            result.findings = list(verdict.findings)
            result.committed_gb = _committed(verdict)
            result.solver = _solver_info(solution, time.perf_counter() - started)
            return result
        resolve = _learn(problem, candidate, verdict, last_failing, levels)
        if resolve is None:
            break
    result.status = "impossible"
    result.reasons = [f"{f.rule}: {f.message}" for f in last_failing] or ["no safe plan found"]
    if solution is not None:
        result.solver = _solver_info(solution, time.perf_counter() - started)
    return result


def _judge(linter: Linter, plan: ServingPlan, source: PlanSource) -> PlanReport:
    report = linter.lint_sources([PlanSource(plan=plan, file=source.file, line=source.line, positions=source.positions)])
    return report.plans[0]


def _solver_info(solution: Solution, seconds: float) -> dict[str, Any]:
    return {
        "status": solution.status,
        "gap": round(solution.gap, 6),
        "seconds": round(seconds, 3),
        "objective": solution.objective,
        "bound": solution.bound,
    }


def _learn(
    problem: Problem, plan: ServingPlan, verdict: PlanReport, failing: list[Finding], levels: dict[str, int]
) -> bool | None:
    """Learn from the rules' verdict: True to solve again, False to re-protect only, None to stop."""
    assert verdict.facts is not None
    gpu_facts = {g["id"]: g for g in verdict.facts.gpus}
    models_on: dict[str, list[str]] = {}
    units_of: dict[str, list[str]] = {}
    for model in plan.models:
        if model.instances == 0:
            continue
        for unit_id in model.placed_on:
            models_on.setdefault(unit_id, []).append(model.name)
            units_of.setdefault(model.name, []).append(unit_id)
    failing_units: dict[str, list[Finding]] = {}
    unplaced: list[Finding] = []
    for finding in failing:
        units: list[str] = []
        if finding.gpu is not None:
            units = [u for u in problem.units if u == finding.gpu or problem.units[u].parent == finding.gpu]
        if not units and finding.model is not None:
            units = units_of.get(finding.model, [])
        if not units:
            unplaced.append(finding)
        for unit_id in units:
            failing_units.setdefault(unit_id, []).append(finding)
    if unplaced and not failing_units:
        return None  # nothing placement or protection can change
    resolve = False
    progressed = False
    for unit_id, findings in failing_units.items():
        fact = gpu_facts.get(unit_id)
        budget = problem.budget_gb.get(unit_id)
        if fact is not None and budget is not None and fact["capacity_known"]:
            limit = min(float(fact["usable_gb"]), float(fact["capacity_gb"]))
            overflow = float(fact["committed_gb"]) - limit
            if overflow > 1e-9:
                problem.budget_gb[unit_id] = budget - overflow - 0.01
                resolve = progressed = True
                continue
        if levels.get(unit_id, 0) < MAX_LEVEL:
            levels[unit_id] = levels.get(unit_id, 0) + 1
            progressed = True
            continue
        names = frozenset(models_on.get(unit_id, []))
        if len(names) < 2:
            continue
        unit = problem.units[unit_id]
        alike = frozenset(u.id for u in problem.units.values() if u.sharing == unit.sharing and u.kind == unit.kind)
        reason = "; ".join(f"{f.rule}: {f.message}" for f in findings[:2])
        if any(names == cut[0] for cut in problem.cuts):
            continue
        problem.cuts.append((names, alike, reason))
        resolve = progressed = True
    if not progressed:
        return None
    return resolve


def _placement_edits(problem: Problem, solution: Solution) -> Edits:
    """The changes to instance counts, placement and memory settings that the solution makes."""
    edits = Edits()
    plan = problem.plan
    for item, model in zip(problem.items, plan.models):
        assignment = solution.assignments.get(item.name)
        if assignment is None:
            if item.allowed or item.current_units:
                edits.set(
                    "model",
                    item.name,
                    "removed",
                    False,
                    True,
                    "memory-fit",
                    f"{item.name} ({model.instances} × {item.weights:g} GiB) is taken off: no GPU it may use has "
                    "room for it beside the latency-critical models and what they need",
                )
            continue
        units = assignment.units
        if not item.spans and set(units) != set(item.current_units):
            old = model.gpu if model.gpu is not None else (model.gpus[0] if model.gpus else None)
            edits.set("model", item.name, "gpu", old, units[0], "placement", _move_reason(problem, item, units[0], solution))
        if assignment.instances != model.instances:
            edits.set(
                "model",
                item.name,
                "instances",
                model.instances,
                assignment.instances,
                "memory-fit" if assignment.instances < model.instances else "utilization",
                _instances_reason(problem, item, assignment.instances, units),
            )
        mode = assignment.mode
        if mode.changed:
            if mode.memory_fraction is not None and mode.memory_fraction != model.memory_fraction:
                unit = problem.units[units[0]]
                capacity = unit.capacity_gb or 0.0
                edits.set(
                    "model",
                    item.name,
                    "memory_fraction",
                    model.memory_fraction,
                    mode.memory_fraction,
                    "greedy-allocator",
                    _fraction_reason(problem, item, mode.memory_fraction, capacity, units[0]),
                )
            if mode.memory_limit_gb is not None and mode.memory_limit_gb != model.memory_limit_gb:
                edits.set(
                    "model",
                    item.name,
                    "memory_limit_gb",
                    model.memory_limit_gb,
                    mode.memory_limit_gb,
                    "greedy-allocator",
                    f"bound {item.framework}'s arena at the {mode.memory_limit_gb:g} GiB one instance declares, "
                    f"so it cannot grow into its neighbours on {units[0]}",
                )
    return edits


def _unit_load(problem: Problem, solution: Solution, unit_id: str) -> float:
    total = 0.0
    for item in problem.items:
        a = solution.assignments.get(item.name)
        if a is not None and unit_id in a.units:
            total += a.instances * problem.instance_gb(item, unit_id, a.mode)
    return total


def _move_reason(problem: Problem, item: Item, unit_id: str, solution: Solution) -> str:
    budget = problem.budget_gb.get(unit_id, 0.0)
    load = _unit_load(problem, solution, unit_id)
    where = f"{', '.join(item.current_units)}" if item.current_units else "no GPU"
    return f"moved from {where} to {unit_id}: {load:.1f} of {budget:.1f} GiB usable there with it"


def _instances_reason(problem: Problem, item: Item, instances: int, units: tuple[str, ...]) -> str:
    unit_id = units[0]
    budget = problem.budget_gb.get(unit_id, 0.0)
    if instances < item.instances:
        return (
            f"{item.instances} → {instances} instance(s) so that {unit_id} fits within its {budget:.1f} GiB usable "
            f"beside the latency-critical models"
        )
    return (
        f"{item.instances} → {instances} instance(s) (most {item.hi}): {unit_id} has room for them within {budget:.1f} GiB usable"
    )


def _fraction_reason(problem: Problem, item: Item, fraction: float, capacity: float, unit_id: str) -> str:
    from .problem import GREEDY_BASIS

    if GREEDY_BASIS.get(item.framework) == "total":
        taken = fraction * capacity
        return (
            f"{item.framework} takes {fraction:g} × {capacity:.1f} GiB = {taken:.1f} GiB at start"
            + (f" (its declared {item.weights:g} GiB fit)" if item.weights else "")
            + f", so every model on {unit_id} fits"
        )
    return (
        f"{item.framework} takes {fraction:g} of the memory its weights leave free for its KV cache; "
        f"set explicitly so that every model on {unit_id} fits"
    )


#: Findings a change of one rule's kind also answers: an overflow that greedy reservations
#: cause is memory-fit's one error (naming the reservations), answered by a fraction.
_ALSO_ANSWERS = {"greedy-allocator": {"memory-fit"}}


def _with_fixes(changes: list[Change], failing: list[Finding], plan: ServingPlan) -> list[Change]:
    """Attach to each change the input findings of its rule about its subject (a model, or its GPUs)."""
    units_of = {m.name: set(m.placed_on) | {u.split(":")[0] for u in m.placed_on} for m in plan.models}
    answered: set[int] = set()  # each finding is named once, on the first change that answers it
    for change in changes:
        rules = {change.rule, *_ALSO_ANSWERS.get(change.rule, ())}
        for n, finding in enumerate(failing):
            if finding.rule not in rules or n in answered:
                continue
            if (
                (change.kind == "model" and finding.model == change.name)
                or (change.kind == "gpu" and finding.gpu == change.name)
                or (
                    change.kind == "model"
                    and finding.model is None
                    and finding.gpu in units_of.get(change.name, ())
                    and change.name in finding.message
                )
            ):
                text = f"{finding.rule}: {finding.message}"
                if text not in change.fixes:
                    change.fixes.append(text)
                answered.add(n)
    return changes


def _unfixable(problem: Problem) -> list[str]:
    """Reasons no plan can be safe, found before solving (the clearest messages)."""
    reasons: list[str] = []
    context = problem.accounting.cuda_context_gb
    for item in problem.items:
        if not item.critical:
            continue
        if not item.allowed:
            what = "its GPUs are not all in the plan" if item.spans else "no GPU with known capacity it may use"
            reasons.append(f"{item.name} is latency-critical but has nowhere to run: {what}")
            continue
        best: tuple[float, str] | None = None
        need = None
        for unit_id in item.allowed:
            if unit_id not in problem.budget_gb:
                best = None
                need = None
                break
            smallest = min(problem.instance_gb(item, unit_id, m) for m in item.modes.get(unit_id, []))
            room = problem.budget_gb[unit_id]
            if need is None or smallest * item.lo < need:
                need = smallest * item.lo
            if best is None or room > best[0]:
                best = (room, unit_id)
        if best is not None and need is not None and need > best[0] + 1e-9:
            per = f"{item.lo} × {need / item.lo:.1f} GiB" if item.lo > 1 else f"{need:.1f} GiB"
            reasons.append(
                f"{item.name} needs {per} (with its CUDA context of {context:g} GiB); the largest usable GPU it may use "
                f"({best[1]}) has {best[0]:.1f} GiB"
            )
    return reasons


def explain(problem: Problem, solution: Solution) -> list[str]:
    """Why the solver found no plan: the tightest constraints on the latency-critical models."""
    reasons = _unfixable(problem)
    if reasons:
        return reasons
    if solution.status == "unknown":
        return ["no plan found within the time limit; raise --time-limit"]
    # Critical models that cannot move, summed per unit.
    fixed: dict[str, list[Item]] = {}
    for item in problem.items:
        if item.critical and len(item.allowed) == 1:
            fixed.setdefault(item.allowed[0], []).append(item)
        elif item.critical and item.spans:
            for unit_id in item.allowed:
                fixed.setdefault(unit_id, []).append(item)
    for unit_id, items in fixed.items():
        if unit_id not in problem.budget_gb:
            continue
        need = sum(i.lo * min(problem.instance_gb(i, unit_id, m) for m in i.modes.get(i.allowed[0], [])) for i in items)
        if need > problem.budget_gb[unit_id] + 1e-9:
            names = ", ".join(i.name for i in items)
            return [
                f"{names} need {need:.1f} GiB on {unit_id} (CUDA contexts included); it has "
                f"{problem.budget_gb[unit_id]:.1f} GiB usable" + ("" if problem.move else "; --move lets other models leave it")
            ]
    if problem.cuts:
        return [f"{', '.join(sorted(names))} cannot share a GPU safely ({why})" for names, _, why in problem.cuts]
    critical_need = 0.0
    for item in problem.items:
        if item.critical and item.allowed:
            critical_need += item.lo * min(problem.instance_gb(item, u, m) for u in item.allowed for m in item.modes.get(u, []))
    total = sum(problem.budget_gb.values())
    return [f"the latency-critical models need {critical_need:.1f} GiB in all; the GPUs have {total:.1f} GiB usable"]

"""Waivers that waive nothing: a misspelt rule, model or GPU, or a rule waived on the wrong subject.

A waiver is exact (rule id and subject; a model rule waived for a GPU covers the
models on it). One that matches no finding is almost always a typo that leaves the finding it was meant for in force, or a leftover that hides
nothing any more; either way the user should hear of it. Each such waiver is one
`waiver-unmatched` finding at the waiver's line, with a did-you-mean where a known
name is close. Only the plan's own waivers are checked: the project config's apply to
every plan, and most of them match nothing in any one plan.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, Mapping, NamedTuple, Sequence

from .closest import did_you_mean
from .facts import Facts
from .findings import Finding
from .source import PlanSource
from .waivers import Waiver, expired, waives

RULE = "waiver-unmatched"


class Problem(NamedTuple):
    """Why a waiver waives nothing, how to fix it, and the waiver's key at fault (None: the waiver as a whole)."""

    text: str
    fix: str
    key: Literal["rule", "model", "gpu"] | None


def unmatched_waivers(
    source: PlanSource,
    waivers: Sequence[Waiver],
    facts: Facts,
    findings: Sequence[Finding],
    scopes: Mapping[str, str],
) -> list[Finding]:
    """A warning for each of `waivers` (the plan's own) that matches none of `findings`.

    `scopes` maps every known rule id to its scope (model, gpu, waiver, plan, input).
    """
    if not waivers:
        return []
    today = dt.date.fromisoformat(facts.plan["today"])
    models = [m["name"] for m in facts.models]
    gpus = [g["id"] for g in facts.gpus]
    gpus_of = {m["name"]: m["gpus"] or m["targets"] for m in facts.models}
    result: list[Finding] = []
    for n, waiver in enumerate(waivers):
        if expired(waiver, today):
            continue  # `waiver-expired` speaks for it
        problem = _problem(waiver, scopes, models, gpus, gpus_of, findings)
        if problem is None:
            continue
        file, line, column = source.locate("waiver", n, problem.key)
        result.append(
            Finding(
                rule=RULE,
                severity="warning",
                message=f"waiver of {waiver.rule} for {waiver.model or waiver.gpu}: {problem.text}",
                model=waiver.model,
                gpu=waiver.gpu,
                file=file,
                line=line,
                column=column,
                fix=problem.fix,
                plan=source.plan.metadata.name,
            )
        )
    return result


def _problem(
    waiver: Waiver,
    scopes: Mapping[str, str],
    models: list[str],
    gpus: list[str],
    gpus_of: Mapping[str, list[str]],
    findings: Sequence[Finding],
) -> Problem | None:
    """What is wrong with a waiver; None when it waives something."""
    scope = scopes.get(waiver.rule)
    if scope is None:
        return Problem(
            f"rule {waiver.rule!r} does not exist{did_you_mean(waiver.rule, scopes)}",
            "name the rule exactly as `gpuadmit rules list` prints it",
            "rule",
        )
    if waiver.model is not None and waiver.model not in models:
        return Problem(
            f"model {waiver.model!r} is not in this plan{did_you_mean(waiver.model, models)}",
            "name the model exactly as the plan does",
            "model",
        )
    if waiver.gpu is not None and waiver.gpu not in gpus:
        return Problem(
            f"GPU {waiver.gpu!r} is not in this plan{did_you_mean(waiver.gpu, gpus)}",
            "name the GPU (or MIG slice) exactly as the plan does",
            "gpu",
        )
    if scope == "gpu" and waiver.gpu is None:
        on = ", ".join(gpus_of.get(waiver.model or "", [])) or "its GPU"
        return Problem(
            f"{waiver.rule} judges GPUs, not models, so a waiver naming only a model waives nothing",
            f"waive it for the GPU instead: `gpu: {on}`",
            None,
        )
    if any(waives(waiver, finding.rule, finding.model, finding.gpu) for finding in findings):
        return None
    return Problem(
        f"{waiver.rule} finds nothing to waive here",
        "remove the waiver: the finding it was written for is gone",
        None,
    )

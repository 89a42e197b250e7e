"""Waivers that waive nothing: a misspelt rule, model or GPU, or a rule waived on the wrong subject.

A waiver is exact (rule id and subject; a model rule waived for a GPU covers the
models on it). One that matches no finding is almost always a typo that leaves the finding it was meant for in force, or a leftover that hides
nothing any more; either way the user should hear of it. Each such waiver is one
`waiver-unmatched` finding at the waiver's line, with a did-you-mean where a known
name is close. Only the plan's own waivers are checked: the project config's apply to
every plan, and most of them match nothing in any one plan.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from .closest import did_you_mean
from .facts import Facts
from .findings import Finding
from .plan import Waiver
from .source import PlanSource

RULE = "waiver-unmatched"


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
    today = facts.plan["today"]
    models = [m["name"] for m in facts.models]
    gpus = [g["id"] for g in facts.gpus]
    gpus_of = {m["name"]: m["gpus"] or m["targets"] for m in facts.models}
    result: list[Finding] = []
    for n, waiver in enumerate(waivers):
        if waiver.expires is not None and waiver.expires.isoformat() < today:
            continue  # `waiver-expired` speaks for it
        problem, fix = _problem(waiver, scopes, models, gpus, gpus_of, findings)
        if problem is None:
            continue
        # Point at the key that is wrong: `rule:`, `model:` or `gpu:`, else the waiver.
        key = next((k for k in ("rule", "model", "GPU") if problem.startswith(k)), None)
        file, line, column = source.locate("waiver", n, key.lower() if key else None)
        result.append(
            Finding(
                rule=RULE,
                severity="warning",
                message=f"waiver of {waiver.rule} for {waiver.model or waiver.gpu}: {problem}",
                model=waiver.model,
                gpu=waiver.gpu,
                file=file,
                line=line,
                column=column,
                fix=fix,
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
) -> tuple[str | None, str]:
    """What is wrong with a waiver, and how to fix it; (None, "") when it waives something."""
    scope = scopes.get(waiver.rule)
    if scope is None:
        return (
            f"rule {waiver.rule!r} does not exist{did_you_mean(waiver.rule, scopes)}",
            "name the rule exactly as `gpuadmit rules list` prints it",
        )
    if waiver.model is not None and waiver.model not in models:
        return (
            f"model {waiver.model!r} is not in this plan{did_you_mean(waiver.model, models)}",
            "name the model exactly as the plan does",
        )
    if waiver.gpu is not None and waiver.gpu not in gpus:
        return (
            f"GPU {waiver.gpu!r} is not in this plan{did_you_mean(waiver.gpu, gpus)}",
            "name the GPU (or MIG slice) exactly as the plan does",
        )
    if scope == "gpu" and waiver.gpu is None:
        on = ", ".join(gpus_of.get(waiver.model or "", [])) or "its GPU"
        return (
            f"{waiver.rule} judges GPUs, not models, so a waiver naming only a model waives nothing",
            f"waive it for the GPU instead: `gpu: {on}`",
        )
    for finding in findings:
        if (
            finding.rule == waiver.rule
            and (waiver.model is None or waiver.model == finding.model)
            and (waiver.gpu is None or waiver.gpu == finding.gpu)
        ):
            return None, ""
    return (
        f"{waiver.rule} finds nothing to waive here",
        "remove the waiver: the finding it was written for is gone",
    )

"""The neighbour facts of a model on one unit are written out in `_neighbours_on` (most
models of a plan take that path); they must equal what the general `_neighbour_facts`
gives, on units small and larger than the listed names."""

from __future__ import annotations

import random
from typing import Any

from policy.facts import NEIGHBOURS_LISTED, _neighbour_facts, build_facts
from policy.plan import ServingPlan


def random_plan(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    gpus = [{"id": f"g{n}", "memory_gb": 80} for n in range(rng.randint(1, 4))]
    models = []
    for n in range(rng.randint(1, 3 * NEIGHBOURS_LISTED)):
        model: dict[str, Any] = {
            "name": f"m{rng.randint(0, 999):03d}-{n}",
            "gpu_gb": 1,
            "latency_critical": rng.random() < 0.3,
            "instances": rng.randint(1, 3),
        }
        if rng.random() < 0.5:
            model["server"] = rng.choice(["triton-a", "triton-b"])
        if rng.random() < 0.3:
            model["instances_share_process"] = rng.random() < 0.5
        if rng.random() < 0.2 and len(gpus) > 1:
            model["gpus"] = [g["id"] for g in rng.sample(gpus, 2)]  # tensor parallel: the other path
        else:
            model["gpu"] = rng.choice(gpus)["id"]
        models.append(model)
    return {"gpus": gpus, "models": models}


def test_written_out_neighbour_facts_equal_the_general_ones() -> None:
    checked = 0
    for seed in range(60):
        facts = build_facts(ServingPlan.model_validate(random_plan(seed)))
        for unit in facts.units:
            present = {m.name: m for m in unit.models}
            everyone = sorted(present)
            critical = sorted([name for name, m in present.items() if m.critical])
            bulk = sorted([name for name, m in present.items() if not m.critical])
            for view in unit.models:
                if len(view.gpus) != 1:
                    continue
                written_out = dict(view.fact)
                _neighbour_facts(view, everyone, critical, bulk, True)
                assert view.fact == written_out, (seed, view.name)
                checked += 1
    assert checked > 300

"""`policy.suggest(...)`: what it may change, what it never changes, and the rules as judge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import policy
from conftest import ROOT, SAMPLES
from policy.suggest import Suggestion

HEADER = "apiVersion: gpuadmit.dev/v1alpha1\nkind: ServingPlan\nmetadata: {name: p}\n"


def _plan(tmp_path: Path, body: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def _changes(result: Suggestion) -> dict[tuple[str, str], object]:
    (plan,) = result.plans
    return {(c.name, c.path): c.new for c in plan.changes}


def _lints_clean(path: Path, plan: object) -> bool:
    from policy.api import Linter
    from policy.source import PlanSource

    return not Linter().lint_sources([PlanSource(plan)]).failed("error")  # type: ignore[arg-type]


def test_policy_suggest_is_the_library_entry_point() -> None:
    result = policy.suggest(str(SAMPLES / "seed-demo.yaml"), time_limit=5)
    assert result.exit_code() == 0
    (plan,) = result.plans
    assert plan.status == "changed"
    assert {m.name for m in plan.plan.models} == {"chat-llm", "embeddings", "reranker", "guard"}
    import policy.suggest as package

    assert package(str(SAMPLES / "seed-demo-safe.yaml")).plans[0].status == "safe"


def test_lint_never_imports_the_solver() -> None:
    code = (
        "import sys, policy; policy.lint('samples/seed-demo.yaml');"
        "print('ortools' in sys.modules, 'ruamel' in sys.modules, 'policy.suggest' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False False"


def test_memory_overflow_is_resolved_by_bulk_instances_never_critical_ones(tmp_path: Path) -> None:
    path = _plan(
        tmp_path,
        "gpus: [{id: gpu0, memory_gb: 40}]\n"
        "models:\n"
        "  - {name: chat, gpu: gpu0, gpu_gb: 20, instances: 1, latency_critical: true, sla_ms: 100}\n"
        "  - {name: bulk, gpu: gpu0, gpu_gb: 5, instances: 4}\n",
    )
    result = policy.suggest(path, time_limit=5)
    changes = _changes(result)
    # 38 GiB usable: chat 20.5, so bulk keeps 3 × 5.5 = 16.5.
    assert changes[("bulk", "instances")] == 3
    assert ("chat", "instances") not in changes
    assert _lints_clean(path, result.plans[0].plan)


def test_instances_grow_within_instances_max_to_use_the_gpu(tmp_path: Path) -> None:
    path = _plan(
        tmp_path,
        "gpus: [{id: gpu0, memory_gb: 80}]\n"
        "models:\n"
        "  - {name: chat, gpu: gpu0, gpu_gb: 30, latency_critical: true, sla_ms: 100}\n"
        "  - {name: bulk, gpu: gpu0, gpu_gb: 9.5, instances: 1, instances_max: 3}\n"
        "  - {name: batch, gpu: gpu0, gpu_gb: 9.5, instances: 2, instances_min: 2}\n",
    )
    result = policy.suggest(path, time_limit=5)
    changes = _changes(result)
    # 76 GiB usable, chat 30.5 and batch 2 × 10: bulk grows to 2 × 10 (a third would need 80.5).
    assert changes[("bulk", "instances")] == 2
    assert ("batch", "instances") not in changes
    assert result.plans[0].changes[0].rule in {"utilization", "latency-critical-priority"}


def test_models_move_only_with_move_and_pinned_ones_never(tmp_path: Path) -> None:
    body = (
        "gpus: [{id: gpu0, memory_gb: 40}, {id: gpu1, memory_gb: 40}]\n"
        "models:\n"
        "  - {name: chat, gpu: gpu0, gpu_gb: 30, latency_critical: true, sla_ms: 100}\n"
        "  - {name: pinned-bulk, gpu: gpu0, gpu_gb: 3, pinned: true}\n"
        "  - {name: big-bulk, gpu: gpu0, gpu_gb: 12}\n"
    )
    path = _plan(tmp_path, body)
    stay = _changes(policy.suggest(path, time_limit=5))
    assert stay[("big-bulk", "removed")] is True, "without --move the bulk model that does not fit is taken off"
    moved = policy.suggest(path, move=True, time_limit=5)
    changes = _changes(moved)
    assert changes[("big-bulk", "gpu")] == "gpu1"
    assert ("pinned-bulk", "gpu") not in changes and ("chat", "gpu") not in changes
    reason = next(c.reason for c in moved.plans[0].changes if c.path == "gpu")
    assert reason == "moved from gpu0 to gpu1: 12.5 of 38.0 GiB usable there with it"


def test_greedy_fraction_is_set_so_every_model_fits(tmp_path: Path) -> None:
    path = _plan(
        tmp_path,
        "gpus: [{id: gpu0, memory_gb: 80}]\n"
        "models:\n"
        "  - {name: chat, framework: vllm, gpu: gpu0, gpu_gb: 30, latency_critical: true, sla_ms: 200}\n"
        "  - {name: embed, framework: pytorch, gpu: gpu0, gpu_gb: 8}\n",
    )
    result = policy.suggest(path, time_limit=5)
    changes = _changes(result)
    fraction = changes[("chat", "memory_fraction")]
    assert isinstance(fraction, float)
    # Never below what the critical model declares (30 of 80 GiB), and the neighbour fits.
    assert 30 / 80 <= fraction <= (76 - 8.5 - 0.5) / 80
    assert ("embed", "removed") not in changes
    reason = next(c for c in result.plans[0].changes if c.path == "memory_fraction")
    assert reason.rule == "greedy-allocator" and "vllm takes" in reason.reason
    # The overflow the default fraction causes is one memory-fit error naming the reservation.
    assert (
        reason.fixes[0].startswith("memory-fit: gpu0:") and "chat (vllm gpu_memory_utilization 0.92 (default)" in reason.fixes[0]
    )


def test_served_load_decides_where_throughput_and_load_are_declared(tmp_path: Path) -> None:
    # Room for 4 more GiB: the bigger model would use memory best, but the smaller one
    # serves more of its expected load.
    path = _plan(
        tmp_path,
        "gpus: [{id: gpu0, memory_gb: 40}]\n"
        "models:\n"
        "  - {name: chat, gpu: gpu0, gpu_gb: 30, latency_critical: true, sla_ms: 100, throughput_rps: 20, expected_rps: 20}\n"
        "  - {name: big, gpu: gpu0, gpu_gb: 6.5, instances: 1, throughput_rps: 5, expected_rps: 50}\n"
        "  - {name: small, gpu: gpu0, gpu_gb: 2.5, instances: 1, throughput_rps: 40, expected_rps: 100}\n",
    )
    result = policy.suggest(path, time_limit=5)
    changes = _changes(result)
    assert changes.get(("big", "removed")) is True
    assert ("small", "removed") not in changes
    assert changes[("chat", "rate_limit.max_rps")] == 20.0


def test_no_room_for_the_critical_models_together_names_them(tmp_path: Path) -> None:
    path = _plan(
        tmp_path,
        "gpus: [{id: gpu0, memory_gb: 40}]\n"
        "models:\n"
        "  - {name: chat, gpu: gpu0, gpu_gb: 25, latency_critical: true}\n"
        "  - {name: guard, gpu: gpu0, gpu_gb: 15, latency_critical: true}\n",
    )
    result = policy.suggest(path, time_limit=5)
    assert result.exit_code() == 1
    assert result.plans[0].reasons == [
        "chat, guard need 41.0 GiB on gpu0 (CUDA contexts included); it has 38.0 GiB usable; --move lets other models leave it"
    ]


def test_a_stricter_rule_changes_the_suggestion(tmp_path: Path) -> None:
    """The rules are the judge: a rule that refuses time-slicing across servers moves the GPU to MPS."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "no-time-slicing-across-servers.yaml").write_text(
        "id: no-time-slicing-across-servers\n"
        "title: Critical and bulk processes do not time-slice one GPU\n"
        "severity: error\n"
        "scope: gpu\n"
        "description: Under time-slicing, processes get no priority between them.\n"
        "remediation: use MPS with limits or MIG\n"
        'match: gpu.sharing == "time-slicing" && gpu.servers_apart\n'
        "validations:\n"
        "  - expression: 'false'\n"
        '    message: "{gpu.id}: time-sliced across servers"\n'
    )
    path = _plan(
        tmp_path,
        "gpus: [{id: gpu0, memory_gb: 80}]\n"
        "models:\n"
        "  - {name: chat, gpu: gpu0, gpu_gb: 30, latency_critical: true, sla_ms: 100, server: a}\n"
        "  - {name: bulk, gpu: gpu0, gpu_gb: 8, server: b}\n",
    )
    plain = _changes(policy.suggest(path, time_limit=5))
    assert ("gpu0", "sharing") not in plain
    strict = policy.suggest(path, rule_dirs=[rules], time_limit=5)
    changes = _changes(strict)
    assert changes[("gpu0", "sharing")] == "mps"
    assert changes[("bulk", "caps.compute_pct")] == 50.0


@pytest.mark.parametrize("fmt", ["json"])
def test_triton_changes_name_the_config_field(tmp_path: Path, fmt: str) -> None:
    import shutil

    from policy.suggest.writers import render_json

    repo = tmp_path / "triton"
    shutil.copytree(SAMPLES / "triton", repo)
    config = repo / "chat-llm" / "config.pbtxt"
    text = config.read_text()
    start = text.index("dynamic_batching")
    depth, end = 0, start
    for end in range(start, len(text)):
        depth += text[end] == "{"
        depth -= text[end] == "}"
        if depth == 0 and text[end] == "}":
            break
    config.write_text(text[:start] + text[end + 1 :])
    result = policy.suggest(repo, time_limit=5)
    assert result.exit_code() == 0
    import json

    plan = json.loads(render_json(result.plans))["plans"][0]
    assert plan["input"] == "triton"
    wheres = {c["field"]: c["where"] for c in plan["changes"]}
    assert any("dynamic_batching { default_queue_policy { max_queue_size:" in w for w in wheres.values()), wheres
    assert all(w.split(":")[0].endswith("config.pbtxt") or "tritonserver" in w for w in wheres.values()), wheres


def test_twenty_models_on_four_gpus_are_solved_to_proven_optimality() -> None:
    import random

    from policy.api import Linter
    from policy.plan import ServingPlan
    from policy.source import PlanSource
    from policy.suggest.planner import suggest_source

    rng = random.Random(11)
    models = []
    for m in range(20):
        model = {"name": f"m{m}", "gpu": f"gpu{rng.randrange(4)}", "gpu_gb": float(rng.randint(4, 24))}
        if m % 5 == 0:
            model.update(latency_critical=True, sla_ms=100.0)
        else:
            model.update(instances=rng.randint(1, 2), instances_max=3)
        models.append(model)
    plan = ServingPlan.model_validate({"gpus": [{"id": f"gpu{g}", "memory_gb": 80} for g in range(4)], "models": models})
    result = suggest_source(PlanSource(plan), Linter(), move=True, time_limit=30)
    assert result.status == "changed"
    assert result.solver["status"] == "optimal" and result.solver["gap"] == 0
    kept = {m.name for m in result.plan.models}
    assert {m.name for m in plan.models if m.latency_critical} <= kept
    assert result.committed_gb <= 4 * 76.0

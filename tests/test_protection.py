"""Protection: only a mechanism that really arbitrates protects a latency-critical model.

docs/PROTECTION.md gives each semantic its source; these tests hold the readers and
facts to it, and make sure the protection rules' passing fixtures are passing for the
right reason (their `match` is true, so the validations really ran).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from policy.api import Linter
from policy.facts import build_facts
from policy.plan import ServingPlan
from policy.readers import triton
from policy.rules import builtin_rules_dir

FIXTURES = Path(__file__).parent / "rules"
#: ../shared/realworld beside the checkout (a worktree sits one folder deeper).
REALWORLD = next(
    (p for p in (Path(__file__).resolve().parents[n] / "shared" / "realworld" for n in (2, 3)) if p.is_dir()),
    Path("/nonexistent"),
)
PROTECTION_RULES = (
    "latency-critical-priority",
    "latency-critical-rate-limit",
    "latency-critical-queue",
    "bulk-capped",
    "isolation",
    "compute-share",
)


def _probe_linter(tmp_path: Path) -> Linter:
    """The built-in rules plus, for each protection rule, a probe that fails wherever its match holds."""
    probes = tmp_path / "probes"
    probes.mkdir()
    for rule_id in PROTECTION_RULES:
        spec = yaml.safe_load((builtin_rules_dir() / f"{rule_id}.yaml").read_text(encoding="utf-8"))
        probe = {
            "id": f"reach-{rule_id}",
            "title": f"{rule_id} is judged",
            "severity": "info",
            "scope": spec["scope"],
            "description": f"Fires wherever {rule_id}'s match holds.",
            "remediation": "none",
            "params": spec.get("params", {}),
            "match": spec["match"],
            "validations": [{"expression": "false", "message": "reached"}],
        }
        (probes / f"reach-{rule_id}.yaml").write_text(yaml.safe_dump(probe), encoding="utf-8")
    return Linter(rule_dirs=[probes])


def test_every_passing_fixture_of_a_protection_rule_reaches_its_validations(tmp_path: Path) -> None:
    linter = _probe_linter(tmp_path)
    for rule_id in PROTECTION_RULES:
        passing = sorted(p for p in (FIXTURES / rule_id).iterdir() if p.name.startswith("pass-"))
        assert passing, f"{rule_id} has no pass-* fixture"
        for fixture in passing:
            report = linter.lint_paths([fixture])
            reached = [f for f in report.findings if f.rule == f"reach-{rule_id}"]
            assert reached, f"{fixture.relative_to(FIXTURES)}: {rule_id}'s match is false, so it judges nothing"


# -- Triton: the rate limiter's priority acts only with resources and --rate-limit ---------


def _repo(tmp_path: Path, limiter: str, args: str = "[--rate-limit=execution_count]") -> dict[str, object]:
    (tmp_path / "chat").mkdir()
    (tmp_path / "chat" / "config.pbtxt").write_text(
        'name: "chat"\nbackend: "onnxruntime"\nmax_batch_size: 0\n'
        f"instance_group [ {{ count: 2, kind: KIND_GPU, rate_limiter {{ {limiter} }} }} ]\n",
        encoding="utf-8",
    )
    (tmp_path / "gpuadmit.yaml").write_text(
        f"gpus: [{{id: gpu0, memory_gb: 80}}]\ntriton: {{repository: ., args: {args}}}\n"
        "models: [{name: chat, gpu_gb: 4, latency_critical: true}]\n",
        encoding="utf-8",
    )
    source = triton.read(tmp_path)[0]
    model = source.plan.models[0]
    return {"priority": model.priority, "rate_limit": model.rate_limit, "findings": source.findings}


def test_a_rate_limiter_with_only_a_priority_is_neither_priority_nor_rate_limit(tmp_path: Path) -> None:
    read = _repo(tmp_path, "priority: 1")
    assert read["priority"] is None and read["rate_limit"] is None
    (note,) = read["findings"]  # type: ignore[misc]
    assert note.rule == "latency-critical-priority" and note.severity == "info"
    assert note.message.startswith("chat: rate_limiter priority 1 is never applied: the rate limiter declares no resources")
    assert note.line == 4


def test_a_rate_limiter_with_resources_under_execution_count_gives_priority_and_concurrency(tmp_path: Path) -> None:
    read = _repo(tmp_path, 'resources [ { name: "slot", count: 1 } ] priority: 2')
    assert read["priority"] == 2 and read["rate_limit"] == {"max_concurrency": 2}


def test_a_rate_limiter_the_server_switches_off_gives_no_priority(tmp_path: Path) -> None:
    read = _repo(tmp_path, 'resources [ { name: "slot", count: 1 } ] priority: 2', args="[--model-repository=/m]")
    assert read["priority"] is None and read["rate_limit"] == {"max_concurrency": 2, "enabled": False}


def test_priority_levels_and_the_default_levels_queue_policy_are_read(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.pbtxt").write_text(
        'name: "m"\nbackend: "onnxruntime"\nmax_batch_size: 8\n'
        "dynamic_batching {\n  priority_levels: 3\n  default_priority_level: 2\n"
        "  default_queue_policy { max_queue_size: 4 default_timeout_microseconds: 1000 }\n"
        "  priority_queue_policy { key: 2 value { max_queue_size: 9 default_timeout_microseconds: 30000 } }\n}\n",
        encoding="utf-8",
    )
    model = triton.read(tmp_path)[0].plan.models[0]
    assert model.priority_levels == 3 and model.priority is None
    assert model.rate_limit == {"max_queue": 9, "queue_timeout_ms": 30.0, "timeout_action": "reject"}


def test_real_triton_priority_level_configs_are_read_or_refused_as_triton_would() -> None:
    qa = REALWORLD / "more" / "triton-server-qa"
    if not qa.is_dir():
        pytest.skip("realworld configurations are not here")
    huge = triton.read(qa / "max_priority_level" / "max_priority_level")[0]
    assert huge.plan.models == [] or all(m.priority is None for m in huge.plan.models)
    refused = triton.read(qa / "default_priority_level1" / "default_priority_level1")[0]
    assert any("default priority level must be in range [1, 3]" in f.message for f in refused.findings)


# -- Kubernetes: priorityClassName orders scheduling, not GPU time ----------------------


def test_priority_class_name_is_not_a_gpu_priority(tmp_path: Path) -> None:
    from policy.readers import read_paths

    deployment = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  template:
    spec:
      priorityClassName: {cls}
      nodeSelector: {{nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB-SHARED}}
      containers:
        - name: c
          image: {name}:1
          resources: {{limits: {{nvidia.com/gpu: 1}}}}
"""
    path = tmp_path / "w.yaml"
    path.write_text(
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n---\n"
        + deployment.format(name="chat", cls="high")
        + "---\n"
        + deployment.format(name="batch", cls="system-node-critical"),
        encoding="utf-8",
    )
    plan = read_paths([path]).sources[0].plan
    assert {m.name: m.priority for m in plan.models} == {"chat": None, "batch": None}


# -- facts: which mechanism arbitrates ----------------------------------------------------


def _facts(text: str) -> tuple[dict[str, dict[str, object]], dict[str, dict[str, object]]]:
    facts = build_facts(ServingPlan.model_validate(yaml.safe_load(text)))
    return {m["name"]: m for m in facts.models}, {g["id"]: g for g in facts.gpus}


def test_facts_name_the_mechanism_that_arbitrates() -> None:
    models, gpus = _facts(
        """
gpus: [{id: ts, memory_gb: 80}, {id: mps, memory_gb: 80, sharing: mps}, {id: one, memory_gb: 80}, {id: solo, memory_gb: 80}]
models:
  - {name: a, gpu: ts, latency_critical: true, server: x}
  - {name: a-bulk, gpu: ts, server: y}
  - {name: b, gpu: mps, latency_critical: true, server: x, caps: {compute_pct: 80}}
  - {name: b-bulk, gpu: mps, server: y, caps: {compute_pct: 50}}
  - {name: c, gpu: one, latency_critical: true}
  - {name: c-bulk, gpu: one}
  - {name: d, gpu: solo, latency_critical: true}
"""
    )
    assert [models[n]["arbitration"] for n in "abcd"] == ["nothing", "compute limits", "server", "alone"]
    assert [gpus[g]["arbitration"] for g in ("ts", "mps", "one", "solo")] == ["nothing", "compute limits", "server", "alone"]
    assert models["a"]["bulk_apart_unlimited"] == ["a-bulk"] and models["c"]["server_bulk"] == ["c-bulk"]
    # Limits, not reservations: 80 + 50 > 100 is allowed, and b is sure of 100 - 50.
    assert models["b"]["guaranteed_compute_pct"] == 50.0 and gpus["mps"]["critical_min_compute_pct"] == 50.0


def test_a_critical_model_alone_on_its_mig_slice_is_isolated_by_mig() -> None:
    models, _ = _facts(
        """
gpus: [{id: g, product: A100-SXM4-80GB, sharing: mig, mig: [3g.40gb, 3g.40gb]}]
models:
  - {name: chat, gpu: "g:0", latency_critical: true, gpu_gb: 20, server: x}
  - {name: emb, gpu: "g:1", gpu_gb: 2, server: y}
"""
    )
    assert models["chat"]["arbitration"] == "MIG" and models["chat"]["bulk_apart"] == []


def test_a_tensor_parallel_critical_model_sees_bulk_processes_on_each_of_its_gpus() -> None:
    models, _ = _facts(
        """
gpus: [{id: g0, memory_gb: 80, sharing: mps}, {id: g1, memory_gb: 80, sharing: mps}]
models:
  - {name: chat, gpus: [g0, g1], latency_critical: true, server: x, caps: {compute_pct: 90}}
  - {name: e0, gpu: g0, server: y, caps: {compute_pct: 20}}
  - {name: e1, gpu: g1, server: z}
"""
    )
    assert models["chat"]["bulk_apart"] == ["e0", "e1"] and models["chat"]["bulk_apart_unlimited"] == ["e1"]
    assert models["chat"]["arbitration"] == "nothing" and models["chat"]["guaranteed_compute_pct"] == 80.0

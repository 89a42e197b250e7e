"""`gpuadmit suggest` as a user runs it: the seed demo made safe, --write, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from conftest import SAMPLES, run_cli


def _seed_copy(tmp_path: Path) -> Path:
    target = tmp_path / "seed-demo.yaml"
    shutil.copy(SAMPLES / "seed-demo.yaml", target)
    return target


def test_seed_demo_suggestion_is_a_diff_with_reasons(tmp_path: Path) -> None:
    plan = _seed_copy(tmp_path)
    before = plan.read_text()
    run = run_cli("suggest", str(plan))
    assert run.code == 0, run.stderr
    assert f"--- {plan}" in run.stdout and f"+++ {plan} (suggested)" in run.stdout
    assert "-  - {name: chat-llm, gpu_gb: 42, sla_ms: 200, latency_critical: true}" in run.stdout
    # Each change names its rule and numbers, and the input finding it answers.
    assert "chat-llm  priority: unset → 1" in run.stdout
    assert "fixes latency-critical-rate-limit: chat-llm: latency-critical but has no rate limit" in run.stdout
    assert "(50% of its 200 ms SLA), leaving 100 ms to compute" in run.stdout
    assert "fixes bulk-capped: embeddings" in run.stdout
    assert plan.read_text() == before, "without --write the file is untouched"


def test_seed_demo_written_lints_clean_keeps_models_protects_and_caps(tmp_path: Path) -> None:
    plan = _seed_copy(tmp_path)
    run = run_cli("suggest", "--write", str(plan))
    assert run.code == 0, run.stderr
    assert f"wrote {plan}" in run.stderr
    assert run_cli("lint", str(plan)).code == 0
    text = plan.read_text()
    assert text.startswith("# Can these models share an 80GB GPU while the chat model keeps its SLA?\n")
    assert "GPU_GB: 80\n" in text
    data = yaml.safe_load(text)
    models = {m["name"]: m for m in data["models"]}
    assert list(models) == ["chat-llm", "embeddings", "reranker", "guard"]
    for name in ("chat-llm", "guard"):
        model = models[name]
        limit = model["rate_limit"]
        assert model["priority"] == 1
        assert limit["max_concurrency"] > 0 and limit["max_queue"] > 0
        assert limit["queue_timeout_ms"] < model["sla_ms"], "time is left to compute within the SLA"
        assert limit["timeout_action"] == "reject"
    for name in ("embeddings", "reranker"):
        assert models[name]["priority"] > 1
        assert models[name]["caps"]["max_batch_size"] > 0
    # A second run finds nothing to change.
    again = run_cli("suggest", str(plan))
    assert again.code == 0
    assert "already passes every enabled rule; nothing to change" in again.stdout


def test_safe_plan_comes_back_unchanged(tmp_path: Path) -> None:
    plan = tmp_path / "safe.yaml"
    shutil.copy(SAMPLES / "seed-demo-safe.yaml", plan)
    before = plan.read_text()
    run = run_cli("suggest", "--write", str(plan))
    assert run.code == 0
    assert "nothing to change" in run.stdout
    assert plan.read_text() == before


def test_impossible_plan_exits_1_naming_the_constraint(tmp_path: Path) -> None:
    plan = tmp_path / "too-big.yaml"
    plan.write_text(
        "gpus: [{id: gpu0, memory_gb: 40}]\n"
        "models:\n"
        "  - {name: chat-llm, gpu: gpu0, gpu_gb: 42, latency_critical: true, sla_ms: 200}\n"
    )
    run = run_cli("suggest", str(plan))
    assert run.code == 1
    assert "no safe plan" in run.stdout
    assert (
        "chat-llm needs 42.5 GiB (with its CUDA context of 0.5 GiB); the largest usable GPU it may use (gpu0) has 38.0 GiB"
        in run.stdout
    )


def test_malformed_plan_exits_2_like_lint(tmp_path: Path) -> None:
    plan = tmp_path / "bad.yaml"
    plan.write_text("gpus: [{id: gpu0, memory_gb: 80}]\nmodels:\n  - {name: a, gpu: gpu0, gpu_gbb: 4}\n")
    run = run_cli("suggest", str(plan))
    assert run.code == 2
    assert "gpu_gbb" in run.stderr and "Traceback" not in run.stderr
    assert run_cli("lint", str(plan)).code == 2


def test_json_format_lists_changes_with_rule_and_reason(tmp_path: Path) -> None:
    run = run_cli("suggest", "--format", "json", str(_seed_copy(tmp_path)))
    assert run.code == 0
    plan = json.loads(run.stdout)["plans"][0]
    assert plan["status"] == "changed"
    assert plan["solver"]["status"] == "optimal" and plan["solver"]["gap"] == 0
    change = next(c for c in plan["changes"] if c["name"] == "guard" and c["field"] == "rate_limit.queue_timeout_ms")
    assert change == {
        "kind": "model",
        "name": "guard",
        "field": "rate_limit.queue_timeout_ms",
        "old": None,
        "new": 10.0,
        "rule": "latency-critical-queue",
        "reason": "a request may wait at most 10 ms (50% of its 20 ms SLA), leaving 10 ms to compute",
        "fixes": [],
    }


def test_kubernetes_changes_are_shown_where_they_live() -> None:
    run = run_cli("suggest", str(SAMPLES / "k8s" / "chat-and-embeddings.yaml"))
    assert run.code == 0, run.stdout + run.stderr
    assert "--- " not in run.stdout, "no diff of a manifest: each change is shown where it lives"
    assert "in samples/k8s/chat-and-embeddings.yaml:" in run.stdout or "chat-and-embeddings.yaml:" in run.stdout
    assert "delete the workload, or schedule it on other GPUs" in run.stdout


def test_write_refuses_manifests(tmp_path: Path) -> None:
    target = tmp_path / "k8s"
    shutil.copytree(SAMPLES / "k8s", target)
    before = (target / "chat-and-embeddings.yaml").read_text()
    run = run_cli("suggest", "--write", str(target / "chat-and-embeddings.yaml"))
    assert "--write edits native plans only" in run.stderr
    assert (target / "chat-and-embeddings.yaml").read_text() == before


def test_time_limit_must_be_positive() -> None:
    run = run_cli("suggest", "--time-limit", "0", str(SAMPLES / "seed-demo.yaml"))
    assert run.code == 2
    assert "--time-limit" in run.stderr


BLOCK_PLANS = """\
# Two nodes in one file.
apiVersion: gpuadmit.dev/v1alpha1
kind: ServingPlan
metadata: {name: node-a}
gpus:
  - id: gpu0
    memory_gb: 40      # the small card
  - id: gpu1
    memory_gb: 40
models:
  # the chat model stays where it is
  - name: chat
    gpu: gpu0
    gpu_gb: 30
    latency_critical: true
    sla_ms: 100
    priority: 1
    rate_limit:
      max_concurrency: 4
      max_queue: 8
      queue_timeout_ms: 20
      timeout_action: reject
  - name: batch
    gpu: gpu0
    gpu_gb: 12   # too big to stay beside chat
    priority: 2
    caps:
      max_batch_size: 4
---
apiVersion: gpuadmit.dev/v1alpha1
kind: ServingPlan
metadata: {name: node-b}
spec:
  gpus:
    - {id: gpu0, memory_gb: 80}
  models:
    - name: guard
      gpu: gpu0
      gpu_gb: 2
      latency_critical: true
      sla_ms: 20
"""


def test_write_edits_every_plan_of_a_block_style_file_in_place(tmp_path: Path) -> None:
    plan = tmp_path / "nodes.yaml"
    plan.write_text(BLOCK_PLANS)
    run = run_cli("suggest", "--move", "--write", str(plan))
    assert run.code == 0, run.stdout + run.stderr
    assert run.stderr.count(f"wrote {plan}") == 1
    assert run_cli("lint", str(plan)).code == 0
    text = plan.read_text()
    for comment in (
        "# Two nodes in one file.",
        "# the small card",
        "# the chat model stays where it is",
        "# too big to stay beside chat",
    ):
        assert comment in text
    assert "    gpu: gpu1\n    gpu_gb: 12   # too big to stay beside chat\n" in text, text
    docs = list(yaml.safe_load_all(text))
    assert [d["metadata"]["name"] for d in docs] == ["node-a", "node-b"]
    guard = docs[1]["spec"]["models"][0]
    assert guard["priority"] == 1 and guard["rate_limit"]["timeout_action"] == "reject"
    assert "\n      rate_limit:\n        max_concurrency: 8\n" in text, "new blocks follow the file's block style"

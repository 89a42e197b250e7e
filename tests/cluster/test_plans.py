"""ServingPlans read from the cluster (a snapshot's, or the API's): a workload bound to one
with `gpuadmit.dev/plan` joins that plan's domain, and a plan's new version is judged with
the workloads the cluster binds to it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_cli
from fakes.admission import DEPLOYMENT, SERVING_PLAN, answer, review, webhook_app
from fakes.kube_api import FakeApiServer

BOUND = Path(__file__).resolve().parents[1] / "domains" / "data" / "bound"
#: node-a: one time-sliced A100 80GB whose chat model takes 44 GiB (tests/domains/data/bound).
PLAN = {**yaml.safe_load((BOUND / "node-a.yaml").read_text(encoding="utf-8"))}
PLAN["metadata"] = {"name": "node-a", "namespace": "prod", "uid": "plan-node-a"}
# A batch model rather than a latency-critical one: memory alone decides here.
PLAN["models"] = [
    {k: v for k, v in PLAN["models"][0].items() if k not in ("latency_critical", "sla_ms", "rate_limit", "priority")}
]
#: reranker, bound to node-a: two replicas of 16 GiB, 77.5 GiB with the plan's model: too much.
RERANKER = yaml.safe_load((BOUND / "reranker.yaml").read_text(encoding="utf-8"))
RERANKER["metadata"]["namespace"] = "prod"


def _reranker(replicas: int) -> dict[str, Any]:
    obj = copy.deepcopy(RERANKER)
    obj["spec"]["replicas"] = replicas
    return obj


def _snapshot(tmp_path: Path, *items: dict[str, Any]) -> Path:
    path = tmp_path / "snapshot.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": list(items)}), encoding="utf-8")
    return path


def _write(tmp_path: Path, name: str, obj: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(obj), encoding="utf-8")
    return path


def test_a_workload_bound_to_a_plan_of_the_snapshot_joins_its_domain(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path, PLAN)
    two = _write(tmp_path, "reranker.yaml", _reranker(2))
    run = run_cli("lint", "--cluster", str(snapshot), str(two), "--format", "json")
    assert run.code == 1, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert [p["name"] for p in report["plans"]] == ["node-a"]
    assert {m["name"] for m in report["plans"][0]["gpus"][0]["models"]} == {"chat-llm", "reranker"}
    assert any(f["rule"] == "memory-fit" for f in report["findings"])
    one = _write(tmp_path, "reranker-1.yaml", _reranker(1))
    run = run_cli("lint", "--cluster", str(snapshot), str(one), "--format", "json")
    assert run.code == 0, run.stdout + run.stderr
    assert not [f for f in json.loads(run.stdout)["findings"] if "not in this input" in f["message"]]


def test_without_the_cluster_the_binding_says_its_plan_is_missing(tmp_path: Path) -> None:
    run = run_cli("lint", str(_write(tmp_path, "reranker.yaml", _reranker(2))), "--format", "json")
    assert run.code == 0
    assert any(
        "'node-a' names a ServingPlan that is not in this input" in f["message"] for f in json.loads(run.stdout)["findings"]
    )


def test_a_plan_update_is_judged_with_the_workloads_the_snapshot_binds_to_it(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path, PLAN, _reranker(1))
    bigger = copy.deepcopy(PLAN)
    bigger["models"][0]["gpu_gb"] = 62  # alone it fits; beside the running reranker it does not
    del bigger["metadata"]["uid"]
    given = _write(tmp_path, "node-a.yaml", bigger)
    assert run_cli("lint", str(given)).code == 0
    run = run_cli("lint", "--cluster", str(snapshot), str(given), "--format", "json")
    assert run.code == 1, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert [p["name"] for p in report["plans"]] == ["node-a"]
    assert {m["name"] for m in report["plans"][0]["gpus"][0]["models"]} == {"chat-llm", "reranker"}


def test_audit_judges_the_cluster_plans_with_their_bound_workloads(tmp_path: Path) -> None:
    run = run_cli("audit", "--cluster", str(_snapshot(tmp_path, PLAN, _reranker(2))), "--format", "json")
    assert run.code == 1, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert [p["name"] for p in report["plans"]] == ["node-a"]
    assert any(f["rule"] == "memory-fit" for f in report["findings"])


# -- the webhook ---------------------------------------------------------------------------


def _review(obj: dict[str, Any], kind: tuple[str, str, str], operation: str = "CREATE") -> dict[str, Any]:
    return review(obj, kind=kind, operation=operation, namespace="prod", dry_run=True)


def _app(cluster: str, kubeconfig: str | None = None) -> Any:
    return webhook_app(cluster=cluster, kubeconfig=kubeconfig)


def test_the_webhook_judges_a_bound_workload_in_the_snapshot_plan(tmp_path: Path) -> None:
    app = _app(str(_snapshot(tmp_path, PLAN)))
    denied = answer(app, _review(_reranker(2), DEPLOYMENT))
    assert denied["allowed"] is False and "[memory-fit]" in denied["status"]["message"]
    allowed = answer(app, _review(_reranker(1), DEPLOYMENT))
    assert allowed["allowed"] is True and not any("not in this input" in w for w in allowed.get("warnings", []))


def test_the_webhook_judges_a_plan_update_with_the_workloads_bound_to_it(tmp_path: Path) -> None:
    app = _app(str(_snapshot(tmp_path, PLAN, _reranker(1))))
    bigger = copy.deepcopy(PLAN)
    bigger["models"][0]["gpu_gb"] = 62
    denied = answer(app, _review(bigger, SERVING_PLAN, "UPDATE"))
    assert denied["allowed"] is False and "[memory-fit]" in denied["status"]["message"]
    assert answer(app, _review(copy.deepcopy(PLAN), SERVING_PLAN, "UPDATE"))["allowed"] is True


def test_the_webhook_reads_serving_plans_from_the_api(tmp_path: Path) -> None:
    pytest.importorskip("lightkube")
    with FakeApiServer([PLAN]) as server:
        app = _app("kube", str(server.kubeconfig(tmp_path)))
        assert "/apis/gpuadmit.dev/v1alpha1/servingplans" in server.requests
        denied = answer(app, _review(_reranker(2), DEPLOYMENT))
        assert denied["allowed"] is False and "[memory-fit]" in denied["status"]["message"]
        assert answer(app, _review(_reranker(1), DEPLOYMENT))["allowed"] is True


def test_lint_reads_serving_plans_from_the_api(tmp_path: Path) -> None:
    pytest.importorskip("lightkube")
    with FakeApiServer([PLAN]) as server:
        kubeconfig = server.kubeconfig(tmp_path)
        given = _write(tmp_path, "reranker.yaml", _reranker(2))
        run = run_cli("lint", "--cluster", "kube", "--kubeconfig", str(kubeconfig), str(given), "--format", "json")
        assert run.code == 1, run.stdout + run.stderr
        assert [p["name"] for p in json.loads(run.stdout)["plans"]] == ["node-a"]

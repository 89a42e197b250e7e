"""`gpuadmit.dev/plan: NAME` binds a workload to the ServingPlan NAME of its own namespace.
ServingPlans are namespaced: two teams may each have a plan `node-a`, and one team's workload
must neither squeeze into nor be judged against the other's."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from conftest import run_cli
from fakes.admission import DEPLOYMENT, answer, review, webhook_app

BOUND = Path(__file__).resolve().parent / "data" / "bound"
#: node-a: one time-sliced A100 80GB whose model takes 44 GiB; room for one 16 GiB replica more, not two.
PLAN = yaml.safe_load((BOUND / "node-a.yaml").read_text(encoding="utf-8"))
PLAN["models"] = [
    {k: v for k, v in PLAN["models"][0].items() if k not in ("latency_critical", "sla_ms", "rate_limit", "priority")}
]
RERANKER = yaml.safe_load((BOUND / "reranker.yaml").read_text(encoding="utf-8"))


def _plan(namespace: str | None) -> dict[str, Any]:
    plan = copy.deepcopy(PLAN)
    plan["metadata"] = {"name": "node-a", **({"namespace": namespace} if namespace else {})}
    return plan


def _reranker(namespace: str | None, replicas: int = 2) -> dict[str, Any]:
    obj = copy.deepcopy(RERANKER)
    obj["spec"]["replicas"] = replicas
    if namespace:
        obj["metadata"]["namespace"] = namespace
    return obj


def _lint(tmp_path: Path, *docs: dict[str, Any], cluster: list[dict[str, Any]] | None = None) -> tuple[int, dict[str, Any]]:
    given = tmp_path / "given.yaml"
    given.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    args = ["lint", str(given), "--format", "json"]
    if cluster is not None:
        snapshot = tmp_path / "snapshot.yaml"
        snapshot.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": cluster}), encoding="utf-8")
        args += ["--cluster", str(snapshot)]
    run = run_cli(*args)
    assert run.code in (0, 1), run.stdout + run.stderr
    return run.code, json.loads(run.stdout)


def _unbound(report: dict[str, Any]) -> list[str]:
    return [f["message"] for f in report["findings"] if "names a ServingPlan that is not in this input" in f["message"]]


def test_a_workload_joins_the_plan_of_its_own_namespace(tmp_path: Path) -> None:
    code, report = _lint(tmp_path, _plan("team-a"), _reranker("team-a"))
    assert code == 1 and any(f["rule"] == "memory-fit" for f in report["findings"])
    assert not _unbound(report)


def test_a_workload_does_not_join_another_namespaces_plan_of_the_same_name(tmp_path: Path) -> None:
    code, report = _lint(tmp_path, _plan("team-a"), _reranker("team-b"))
    (message,) = _unbound(report)
    assert "'node-a'" in message and "'team-b'" in message
    # team-a's plan was judged without team-b's workload: it fits.
    assert not [f for f in report["findings"] if f["rule"] == "memory-fit"]


def test_no_namespace_on_either_side_is_the_default_namespace(tmp_path: Path) -> None:
    code, report = _lint(tmp_path, _plan(None), _reranker(None))
    assert code == 1 and not _unbound(report)
    _, report = _lint(tmp_path, _plan(None), _reranker("team-b"))
    assert _unbound(report)


def test_the_cluster_plan_of_another_namespace_is_not_joined(tmp_path: Path) -> None:
    _, report = _lint(tmp_path, _reranker("team-b"), cluster=[_plan("team-a")])
    assert _unbound(report) and not [f for f in report["findings"] if f["rule"] == "memory-fit"]
    code, report = _lint(tmp_path, _reranker("team-a"), cluster=[_plan("team-a")])
    assert code == 1 and [f for f in report["findings"] if f["rule"] == "memory-fit"]


def _post(tmp_path: Path, cluster: list[dict[str, Any]], request: dict[str, Any]) -> dict[str, Any]:
    snapshot = tmp_path / "snapshot.yaml"
    snapshot.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": cluster}), encoding="utf-8")
    return answer(webhook_app(cluster=str(snapshot)), request)


def test_the_webhook_binds_a_workload_in_its_request_namespace(tmp_path: Path) -> None:
    """The object of a CREATE may leave its namespace out: the request's namespace decides."""
    cluster = [_plan("team-a")]
    denied = _post(tmp_path, cluster, review(_reranker(None), kind=DEPLOYMENT, namespace="team-a", dry_run=True))
    assert denied["allowed"] is False and "[memory-fit]" in denied["status"]["message"]
    other = _post(tmp_path, cluster, review(_reranker(None), kind=DEPLOYMENT, namespace="team-b", dry_run=True))
    assert other["allowed"] is True
    assert any("not in this input" in w and "team-b" in w for w in other.get("warnings", []))


def test_a_plan_update_is_not_judged_with_another_namespaces_bound_workloads(tmp_path: Path) -> None:
    bigger = _plan("team-a")
    bigger["models"][0]["gpu_gb"] = 62  # alone it fits; beside a running 16 GiB reranker it does not
    beside_other_team = [_plan("team-a"), _reranker("team-b", replicas=1)]
    assert _post(tmp_path, beside_other_team, review(bigger, operation="UPDATE", dry_run=True))["allowed"] is True
    beside_own_team = [_plan("team-a"), _reranker("team-a", replicas=1)]
    denied = _post(tmp_path, beside_own_team, review(bigger, operation="UPDATE", dry_run=True))
    assert denied["allowed"] is False and "[memory-fit]" in denied["status"]["message"]


def test_lint_of_a_saved_admission_review_binds_in_the_requests_namespace(tmp_path: Path) -> None:
    """`gpuadmit lint` of an AdmissionReview reads its object as the webhook does: an object
    that names no namespace is in the request's."""
    saved = review(_reranker(None), kind=DEPLOYMENT, namespace="team-a")
    code, report = _lint(tmp_path, _plan("team-a"), saved)
    assert code == 1 and any(f["rule"] == "memory-fit" for f in report["findings"])
    assert not _unbound(report)


def test_a_bound_workloads_waiver_does_not_waive_the_plans_model_of_the_same_name(tmp_path: Path) -> None:
    """A Deployment named like the plan's model joins as `<name>-bound`; its waiver goes with it."""
    plan = copy.deepcopy(PLAN)
    plan["metadata"] = {"name": "node-a", "namespace": "team-a"}
    plan["models"] = [{**plan["models"][0], "latency_critical": True, "sla_ms": 300}]  # no rate limit: a finding
    namesake = _reranker("team-a", replicas=1)
    namesake["metadata"]["name"] = "chat-llm"
    namesake["metadata"]["annotations"]["gpuadmit.dev/gpu-gb"] = "4"
    namesake["metadata"]["annotations"]["gpuadmit.dev/waive"] = "latency-critical-rate-limit=not the plan's"
    _, report = _lint(tmp_path, plan, namesake)
    own = [f for f in report["findings"] if f["rule"] == "latency-critical-rate-limit" and f["model"] == "chat-llm"]
    assert own and not any(f.get("waived") for f in own), own

"""Scale subresource reviews (`kubectl scale`, HPAs): the cluster's object judged with the
requested replicas, built once per review; a malformed replica count is bad input, denied
with 400 in every mode; LeaderWorkerSets scale like Deployments."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from fakes import admission
from policy.api import Linter
from policy.cluster import ClusterView, view_of
from policy.cluster.snapshot import ClusterView as SnapshotView
from policy.yamlio import Document
from webhook.judge import judge
from webhook.review import Review, parse_review

DATA = Path(__file__).resolve().parents[1] / "cluster" / "data"
ITEMS: list[dict[str, Any]] = yaml.safe_load((DATA / "snapshot.yaml").read_text(encoding="utf-8"))["items"]
SHARED = "NVIDIA-A100-SXM4-80GB-SHARED"
#: A multi-host group on the shared A100s beside chat-llm (48.5 GiB): one group of a leader
#: and a worker, 10 GiB each, fits (69.5 GiB of 76 usable); two groups do not.
LWS: dict[str, Any] = {
    "apiVersion": "leaderworkerset.x-k8s.io/v1",
    "kind": "LeaderWorkerSet",
    "metadata": {"name": "mn", "namespace": "prod", "generation": 3, "annotations": {"gpuadmit.dev/gpu-gb": "10"}},
    "spec": {
        "replicas": 1,
        "leaderWorkerTemplate": {
            "size": 2,
            "workerTemplate": {
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu.product": SHARED},
                    "containers": [{"name": "w", "image": "example/mn:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
                }
            },
        },
    },
}

LINTER = Linter()


def view(*extra: dict[str, Any]) -> ClusterView:
    return view_of([Document(obj, "cluster", n, n + 1) for n, obj in enumerate([*ITEMS, *extra])], "cluster")


def scale(name: str, replicas: Any, *, group: str = "apps", resource: str = "deployments", uid: str = "s1") -> Review:
    spec = {} if replicas is ... else {"replicas": replicas}
    return parse_review(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                "resource": {"group": group, "version": "v1", "resource": resource},
                "subResource": "scale",
                "namespace": "prod",
                "name": name,
                "operation": "UPDATE",
                "object": {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": name}, "spec": spec},
            },
        }
    )


def test_scaling_a_leaderworkerset_past_its_pool_is_denied_and_within_it_admitted_and_reserved() -> None:
    cluster = view(LWS)
    denied = judge(LINTER, scale("mn", 2, group="leaderworkerset.x-k8s.io", resource="leaderworkersets"), cluster=cluster)
    assert denied.allowed is False and "[memory-fit]" in (denied.message or ""), denied
    assert "LeaderWorkerSet prod/mn is unsafe" in (denied.message or "")
    allowed = judge(
        LINTER, scale("mn", 1, group="leaderworkerset.x-k8s.io", resource="leaderworkersets", uid="s2"), cluster=cluster
    )
    assert allowed.allowed is True, allowed
    key = ("LeaderWorkerSet", "prod", "mn")
    assert cluster.reserved_from(key) == "admitted/s2"
    reserved = cluster.find(*key)
    assert reserved is not None and reserved.data["metadata"]["generation"] == 4, "a scale is one generation on"


def test_a_scale_of_a_kind_in_another_api_group_is_not_taken_for_a_workload_of_that_name() -> None:
    """`deployments/scale` of some other group names no Deployment gpuadmit reads."""
    answer = judge(LINTER, scale("chat-llm", 5, group="example.com"), cluster=view())
    assert answer.allowed is True
    assert answer.warnings == ["gpuadmit: deployments/scale of prod/chat-llm is not in the cluster view; not judged"]


def test_a_scale_review_builds_the_scaled_object_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Judged and then reserved: one lookup and one copy of the cluster's object."""
    built: list[str] = []
    original = SnapshotView.find_scalable

    def counting(self: SnapshotView, group: str, resource: str, namespace: str, name: str) -> Document | None:
        built.append(name)
        return original(self, group, resource, namespace, name)

    monkeypatch.setattr(SnapshotView, "find_scalable", counting)
    cluster = view()
    answer = judge(LINTER, scale("chat-llm", 1), cluster=cluster)
    assert answer.allowed is True and cluster.reserved_from(("Deployment", "prod", "chat-llm")) == "admitted/s1"
    assert built == ["chat-llm"]


MALFORMED = [
    ("two", "'two'"),
    ("2", "'2'"),
    (-1, "-1"),
    (1.5, "1.5"),
    (True, "True"),
]


@pytest.mark.parametrize(("replicas", "said"), MALFORMED, ids=[m[1] for m in MALFORMED])
@pytest.mark.parametrize("mode", ["enforce", "audit"])
@pytest.mark.parametrize("with_view", [True, False], ids=["cluster-view", "no-view"])
def test_a_malformed_replica_count_is_a_400_deny_in_every_mode(replicas: Any, said: str, mode: Any, with_view: bool) -> None:
    answer = judge(LINTER, scale("chat-llm", replicas), mode, cluster=view() if with_view else None)
    assert answer.allowed is False and answer.code == 400 and answer.decision == "error", answer
    assert answer.message is not None and answer.message.startswith(
        "gpuadmit: malformed AdmissionReview: deployments/scale of prod/chat-llm carries "
    )
    assert said in answer.message and answer.message.endswith("expected a non-negative integer")


@pytest.mark.parametrize(
    "spec", [{}, None, {"replicas": None}, ...], ids=["empty spec", "no spec", "replicas null", "spec omitted"]
)
@pytest.mark.parametrize("with_view", [True, False], ids=["cluster-view", "no-view"])
def test_a_scale_to_zero_sent_without_replicas_is_allowed(spec: Any, with_view: bool) -> None:
    """autoscaling/v1 `ScaleSpec.replicas` is `omitempty`: `kubectl scale --replicas=0` and
    KEDA scaling to zero send `spec: {}`. That is a count of 0, judged (it always fits), never
    bad input, in enforce mode as the API server's `failurePolicy: Fail` registration uses."""
    review = scale("chat-llm", 0)
    if spec is ...:
        del review.object["spec"]
    else:
        review.object["spec"] = spec
    cluster = view() if with_view else None
    answer = judge(LINTER, review, "enforce", cluster=cluster)
    assert answer.allowed is True and answer.code is None, answer
    if cluster is not None:
        assert not answer.warnings, answer
        reserved = cluster.find("Deployment", "prod", "chat-llm")
        assert reserved is not None and reserved.data["spec"]["replicas"] == 0, "judged and counted at 0 replicas"


@pytest.mark.parametrize(("spec", "said"), [("two", "spec 'two'"), ([1], "spec [1]")])
def test_a_scale_whose_spec_is_not_an_object_is_a_400_deny(spec: Any, said: str) -> None:
    review = scale("chat-llm", 0)
    review.object["spec"] = spec
    for cluster in (view(), None):
        answer = judge(LINTER, review, "enforce", cluster=cluster)
        assert answer.allowed is False and answer.code == 400, answer
        assert f"carries {said};" in (answer.message or ""), answer


def _served(review: dict[str, Any], tmp_path: Path, **settings: Any) -> dict[str, Any]:
    """One review through the admission app (in-process) with `--cluster FILE`."""
    snapshot = tmp_path / "snapshot.yaml"
    snapshot.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": ITEMS}), encoding="utf-8")
    return admission.answer(admission.webhook_app(cluster=str(snapshot), **settings), review)


def test_fail_open_does_not_let_a_malformed_scale_through(tmp_path: Path) -> None:
    request = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-bad",
            "kind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "subResource": "scale",
            "namespace": "prod",
            "name": "chat-llm",
            "operation": "UPDATE",
            "object": {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": "lots"}},
        },
    }
    answer = _served(copy.deepcopy(request), tmp_path, fail_open=True)
    assert answer["allowed"] is False and answer["status"]["code"] == 400, answer
    assert "malformed AdmissionReview" in answer["status"]["message"]
    request["request"]["object"]["spec"]["replicas"] = 1
    assert _served(request, tmp_path, fail_open=True)["allowed"] is True

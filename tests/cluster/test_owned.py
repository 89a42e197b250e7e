"""Objects a controller owns, in a cluster snapshot: left out only when the controller is of
a kind the view reads and counts (policy.cluster.owners); what a controller of any other
kind owns holds real GPUs and is counted from its own spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_cli

from policy.cluster.owners import COUNTING_CONTROLLERS, counted_by_controller

DATA = Path(__file__).parent / "data"
SNAPSHOT = DATA / "snapshot.yaml"
FITTING = DATA / "new-embeddings-small.yaml"
SHARED = "NVIDIA-A100-SXM4-80GB-SHARED"
POOL = "shared-nvidia-a100-sxm4-80gb"


def pod_spec() -> dict[str, Any]:
    """A pod on the shared A100s that asks for one GPU."""
    return {
        "nodeSelector": {"nvidia.com/gpu.product": SHARED},
        "containers": [{"name": "main", "image": "example/worker:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
    }


def owned(
    kind: str,
    name: str,
    owner_api_version: str,
    owner_kind: str,
    *,
    labels: dict[str, str] | None = None,
    phase: str | None = None,
    gb: str = "20",
) -> dict[str, Any]:
    """A GPU Pod, Deployment or StatefulSet on the shared A100s whose controller is
    `owner_kind` of `owner_api_version`, declaring `gb` GiB per replica."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "prod",
        "uid": f"uid-{name}",
        "annotations": {"gpuadmit.dev/gpu-gb": gb},
        "ownerReferences": [
            {"apiVersion": owner_api_version, "kind": owner_kind, "name": "owner", "uid": "uid-owner", "controller": True}
        ],
    }
    if labels:
        meta["labels"] = labels
    obj: dict[str, Any]
    if kind == "Pod":
        obj = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec()}
        if phase:
            obj["status"] = {"phase": phase}
    else:
        obj = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name, **(labels or {})}}, "spec": pod_spec()},
            },
        }
    return obj


def snapshot_with(tmp_path: Path, *extra: dict[str, Any]) -> Path:
    data = yaml.safe_load(SNAPSHOT.read_text(encoding="utf-8"))
    data["items"].extend(extra)
    path = tmp_path / "snapshot.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def shared_models(snapshot: Path) -> list[str]:
    """The models `gpuadmit audit` judges on the shared A100 pool of `snapshot`."""
    run = run_cli("audit", "--cluster", str(snapshot), "--format", "json")
    assert "Traceback" not in run.stderr, run.stderr
    found = json.loads(run.stdout)
    shared = next(p for p in found["plans"] if p["name"] == POOL)
    return sorted(m["name"] for g in shared["gpus"] for m in g["models"])


def controller(api_version: str, kind: str, name: str = "owner", uid: str = "uid-owner", **spec: Any) -> dict[str, Any]:
    """The controller `owned` names, as the cluster lists it: no GPU of its own."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": "prod", "uid": uid},
        "spec": spec,
    }


def _template() -> dict[str, Any]:
    return {"template": {"spec": {"containers": [{"name": "main", "image": "example/worker:1"}]}}}


JOB = controller("batch/v1", "Job", **_template())
STATEFULSET = controller("apps/v1", "StatefulSet", replicas=0, **_template())
DEPLOYMENT = controller("apps/v1", "Deployment", replicas=0, **_template())
LEADER = controller("v1", "Pod", containers=[{"name": "main", "image": "example/worker:1"}])
INFERENCE_SERVICE = controller("serving.kserve.io/v1beta1", "InferenceService", name="llm", uid="uid-llm")
LWS = controller("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", name="vllm", uid="uid-vllm", replicas=0)

#: (case, the object, the other objects listed with it, whether the view counts it from its own spec)
CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], bool]] = [
    ("PyTorchJob pod", owned("Pod", "trainer-master-0", "kubeflow.org/v1", "PyTorchJob"), [], True),
    ("MPIJob pod", owned("Pod", "allreduce-worker-0", "kubeflow.org/v2beta1", "MPIJob"), [], True),
    # Volcano's Job is a `Job` too: the API group tells it from batch/v1's.
    ("Volcano Job pod", owned("Pod", "vcjob-task-0", "batch.volcano.sh/v1alpha1", "Job"), [], True),
    ("Argo Workflow pod", owned("Pod", "wf-step-1", "argoproj.io/v1alpha1", "Workflow"), [], True),
    ("Argo Rollout ReplicaSet", owned("ReplicaSet", "canary-6c9d", "argoproj.io/v1alpha1", "Rollout"), [], True),
    ("batch Job pod", owned("Pod", "nightly-x7k2p", "batch/v1", "Job"), [JOB], False),
    ("StatefulSet pod", owned("Pod", "db-0", "apps/v1", "StatefulSet"), [STATEFULSET], False),
    ("Deployment ReplicaSet", owned("ReplicaSet", "chat-7f9c", "apps/v1", "Deployment"), [DEPLOYMENT], False),
    # A reference is a claim: a controller the view does not hold, or holds under another
    # uid, or of a kind that does not make such objects, counts nothing.
    ("ReplicaSet of a Deployment not listed", owned("ReplicaSet", "gone-7f9c", "apps/v1", "Deployment"), [], True),
    (
        "ReplicaSet of another Deployment's uid",
        owned("ReplicaSet", "other-7f9c", "apps/v1", "Deployment"),
        [{**DEPLOYMENT, "metadata": {**DEPLOYMENT["metadata"], "uid": "uid-other"}}],
        True,
    ),
    ("Deployment a Job claims", owned("Deployment", "claims-job", "batch/v1", "Job"), [JOB], True),
    (
        "KServe serverless revision Deployment",
        owned(
            "Deployment",
            "llm-predictor-00001-deployment",
            "serving.knative.dev/v1",
            "Revision",
            labels={"serving.kserve.io/inferenceservice": "llm", "serving.knative.dev/revision": "llm-predictor-00001"},
        ),
        [INFERENCE_SERVICE],
        False,
    ),
    (
        "KServe label naming no InferenceService",
        owned(
            "Deployment",
            "lost-predictor-00001-deployment",
            "serving.knative.dev/v1",
            "Revision",
            labels={"serving.kserve.io/inferenceservice": "lost"},
        ),
        [INFERENCE_SERVICE],
        True,
    ),
    (
        "plain Knative revision Deployment",
        owned(
            "Deployment",
            "hello-00001-deployment",
            "serving.knative.dev/v1",
            "Revision",
            labels={"serving.knative.dev/revision": "hello-00001"},
        ),
        [],
        True,
    ),
    (
        "LeaderWorkerSet worker StatefulSet",
        owned("StatefulSet", "vllm-0", "v1", "Pod", labels={"leaderworkerset.sigs.k8s.io/name": "vllm"}),
        [LEADER, LWS],
        False,
    ),
    (
        "LeaderWorkerSet worker StatefulSet, its leader not listed",
        owned("StatefulSet", "vllm-1", "v1", "Pod", labels={"leaderworkerset.sigs.k8s.io/name": "vllm"}),
        [LWS],
        True,
    ),
    ("StatefulSet a Pod owns", owned("StatefulSet", "sidecar-set", "v1", "Pod"), [LEADER], True),
    ("ended PyTorchJob pod", owned("Pod", "done-master-0", "kubeflow.org/v1", "PyTorchJob", phase="Succeeded"), [], False),
    ("failed bare pod", {**owned("Pod", "crashed", "v1", "Nothing", phase="Failed"), "metadata": {"name": "crashed"}}, [], False),
]


@pytest.mark.parametrize(("case", "obj", "listed", "counted"), CASES, ids=[c[0] for c in CASES])
def test_an_owned_object_is_counted_unless_a_counted_controller_holds_it(
    tmp_path: Path, case: str, obj: dict[str, Any], listed: list[dict[str, Any]], counted: bool
) -> None:
    models = shared_models(snapshot_with(tmp_path, obj, *listed))
    name = obj["metadata"]["name"]
    assert (name in models) is counted, (case, models)
    assert "chat-llm" in models
    assert models.count("chat-llm") == 1, "the Deployment's own ReplicaSet and Pod are not counted again"


def test_a_pytorchjob_pod_holding_a_gpu_in_the_pool_makes_a_new_workload_overflow(tmp_path: Path) -> None:
    """Without the job's pod the small embeddings fit beside chat-llm; with it, they do not."""
    assert run_cli("lint", "--cluster", str(SNAPSHOT), str(FITTING)).code == 0
    snapshot = snapshot_with(tmp_path, owned("Pod", "trainer-master-0", "kubeflow.org/v1", "PyTorchJob", gb="20"))
    run = run_cli("lint", "--cluster", str(snapshot), str(FITTING), "--format", "json")
    assert run.code == 1, run.stdout
    found = json.loads(run.stdout)
    fit = [f for f in found["findings"] if f["rule"] == "memory-fit"]
    assert len(fit) == 1 and fit[0]["message"].startswith(f"{POOL}: 77.5 GiB committed > 76.0 GiB usable"), fit


def test_the_counting_controllers_are_the_kinds_the_view_lists_and_reads_with_their_pods() -> None:
    """Leaving out what a controller owns is safe only where the view holds that controller
    and its reader counts the pods it makes."""
    from policy.cluster.kube import KINDS
    from policy.readers import custom_resources, kubernetes

    listed = {(group, kind) for group, _, kind, _, _ in KINDS}
    assert COUNTING_CONTROLLERS <= listed
    read_with_pods = (
        {(g, k) for g, _, k, _, _ in KINDS if k in kubernetes.WORKLOAD_KINDS - {"Pod"}}
        | {(g, k) for g, _, k, _, _ in KINDS if k in kubernetes.KSERVE_KINDS}
        | set(custom_resources.READERS)
    )
    assert COUNTING_CONTROLLERS == read_with_pods


def test_only_the_controller_reference_decides() -> None:
    """A reference without `controller: true` (garbage collection only) counts nothing."""
    pod = owned("Pod", "p", "apps/v1", "ReplicaSet")
    pod["metadata"]["ownerReferences"][0]["controller"] = False
    assert not counted_by_controller(pod)
    pod["metadata"]["ownerReferences"].append({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "controller": True})
    assert not counted_by_controller(pod)


def _review(obj: dict[str, Any], operation: str = "CREATE", uid: str = "u1") -> Any:
    from webhook.review import parse_review

    group = obj["apiVersion"].partition("/")[0] if "/" in obj["apiVersion"] else ""
    request = {
        "uid": uid,
        "kind": {"group": group, "version": "v1", "kind": obj["kind"]},
        "namespace": obj["metadata"].get("namespace", "prod"),
        "name": obj["metadata"]["name"],
        "operation": operation,
        "object": obj,
    }
    return parse_review({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})


def test_the_webhook_admits_a_deployments_own_replica_set_without_counting_it_twice() -> None:
    """The Deployment controller creates and updates a ReplicaSet at every rollout and scale:
    beside its own Deployment it would count twice (2 × 0.6 of the GPU) and be denied."""
    from policy.api import Linter
    from policy.cluster import view_of
    from policy.yamlio import Document
    from webhook.judge import judge

    items = yaml.safe_load(SNAPSHOT.read_text(encoding="utf-8"))["items"]
    cluster = view_of([Document(o, "cluster", n, n + 1) for n, o in enumerate(items)], "cluster")
    own = next(i for i in items if i["kind"] == "ReplicaSet")
    linter = Linter()
    for operation in ("CREATE", "UPDATE"):
        answer = judge(linter, _review(own, operation, uid=f"rs-{operation}"), cluster=cluster)
        assert answer.allowed is True, answer
        assert answer.warnings == ["gpuadmit: counted as part of Deployment prod/chat-llm, judged when it was admitted"]
    assert cluster.reserved_from(("ReplicaSet", "prod", own["metadata"]["name"])) is None, "counted through its Deployment"
    small = yaml.safe_load(FITTING.read_text(encoding="utf-8"))
    assert judge(linter, _review(small, uid="small"), cluster=cluster).allowed is True
    # A ReplicaSet of a controller gpuadmit does not read (an Argo Rollout) holds its own GPUs.
    rollout = owned("ReplicaSet", "canary-6c9d", "argoproj.io/v1alpha1", "Rollout", gb="40")
    denied = judge(linter, _review(rollout, uid="rollout"), cluster=cluster)
    assert denied.allowed is False and "[memory-fit]" in (denied.message or ""), denied


def _view() -> Any:
    from policy.cluster import view_of
    from policy.yamlio import Document

    items = yaml.safe_load(SNAPSHOT.read_text(encoding="utf-8"))["items"]
    return view_of([Document(o, "cluster", n, n + 1) for n, o in enumerate(items)], "cluster")


def _hog(**meta: Any) -> dict[str, Any]:
    """4 replicas of 70 GiB on the shared A100s: far more than the pool holds."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "gpu-hog",
            "namespace": "prod",
            "uid": "uid-gpu-hog",
            "annotations": {"gpuadmit.dev/gpu-gb": "70"},
            **meta,
        },
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "gpu-hog"}},
            "template": {"metadata": {"labels": {"app": "gpu-hog"}}, "spec": pod_spec()},
        },
    }


def test_a_controller_reference_naming_what_the_cluster_does_not_hold_is_judged() -> None:
    """Anyone who may create a Deployment may write `ownerReferences`: naming a Job as its
    controller must not carry 4 × 70 GiB past the memory check."""
    from policy.api import Linter
    from webhook.judge import judge

    linter = Linter()
    forged = _hog(ownerReferences=[{"apiVersion": "batch/v1", "kind": "Job", "name": "x", "uid": "anything", "controller": True}])
    for hog, uid in ((_hog(), "plain"), (forged, "forged")):
        cluster = _view()
        answer = judge(linter, _review(hog, uid=uid), cluster=cluster)
        assert answer.allowed is False and "[memory-fit]" in (answer.message or ""), (uid, answer)
        assert cluster.reserved_from(("Deployment", "prod", "gpu-hog")) is None


def test_a_replica_set_of_an_admitted_deployment_is_counted_through_it_by_uid() -> None:
    """The Deployment controller's ReplicaSet names the Deployment's uid, which the API server
    assigned before admission: the view holds the admitted Deployment under it. A
    ReplicaSet naming the same Deployment under another uid is judged on its own."""
    from policy.api import Linter
    from webhook.judge import judge

    linter = Linter()
    cluster = _view()
    small = yaml.safe_load(FITTING.read_text(encoding="utf-8"))
    small["metadata"]["uid"] = "uid-small"
    assert judge(linter, _review(small, uid="small"), cluster=cluster).allowed is True
    name = small["metadata"]["name"]
    namespace = small["metadata"].get("namespace", "prod")
    assert cluster.reserved_from(("Deployment", namespace, name)) is not None

    def replica_set(rs_name: str, uid: str) -> dict[str, Any]:
        rs = owned("ReplicaSet", rs_name, "apps/v1", "Deployment", gb="40")
        rs["metadata"]["namespace"] = namespace
        rs["metadata"]["ownerReferences"][0].update(name=name, uid=uid)
        return rs

    own = judge(linter, _review(replica_set(f"{name}-5c7d", "uid-small"), uid="rs"), cluster=cluster)
    assert own.allowed is True, own
    assert own.warnings == [f"gpuadmit: counted as part of Deployment {namespace}/{name}, judged when it was admitted"]
    assert cluster.reserved_from(("ReplicaSet", namespace, f"{name}-5c7d")) is None, "counted through its Deployment"
    other = judge(linter, _review(replica_set(f"{name}-9f2a", "uid-another"), uid="rs-other"), cluster=cluster)
    assert other.allowed is False and "[memory-fit]" in (other.message or ""), other


def test_the_cli_reproduction_of_a_forged_controller_is_denied(tmp_path: Path) -> None:
    """`gpuadmit lint --cluster` judges the forged Deployment as the webhook does."""
    forged = _hog(ownerReferences=[{"apiVersion": "batch/v1", "kind": "Job", "name": "x", "uid": "anything", "controller": True}])
    path = tmp_path / "hog.yaml"
    path.write_text(yaml.safe_dump(forged), encoding="utf-8")
    run = run_cli("lint", "--cluster", str(SNAPSHOT), str(path), "--format", "json")
    assert run.code == 1, run.stdout
    assert any(f["rule"] == "memory-fit" for f in json.loads(run.stdout)["findings"])


def test_every_counting_controller_says_what_it_makes() -> None:
    """An object is left out only through a controller that may make its kind: each counting
    controller has its kinds, and no other controller has any."""
    from policy.cluster.owners import OWNS

    assert set(OWNS) == COUNTING_CONTROLLERS
    assert all(OWNS.values())

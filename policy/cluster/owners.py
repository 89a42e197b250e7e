"""Which cluster objects are already counted through their controller, and which hold no GPU.

An object with a controller (`metadata.ownerReferences[]` with `controller: true`) is left
out of the cluster view only when that controller is of a kind the view itself reads and
counts with all its replicas, may own the object's kind (`OWNS`: a Deployment's
ReplicaSets, a ReplicaSet's or StatefulSet's Pods, a CronJob's Jobs, the Deployment an
InferenceService makes in raw mode, ...), and **is really there**: the view holds an object
of that kind, namespace and name whose `metadata.uid` is the reference's (`controller_in`).
A reference is whatever its writer put there; one naming a controller the view does not
hold counts nothing, and the object is counted from its own spec. Every object the
controller is found for is either counted itself or left out for the same reason, so one
step up the controller chain decides.

A controller of any other kind — a Kubeflow PyTorchJob, TFJob or MPIJob, a Volcano
`batch.volcano.sh` Job, an Argo Workflow, a JobSet, a KubeRay RayJob, any operator's
custom resource — is not read: what it owns is counted from its own spec (a Pod holds its
GPUs now, a Job or RayCluster its replicas), never dropped in silence.

Two controllers are counted only with a mark the reader knows (sources in docs/DOMAINS.md):

- a Knative `serving.knative.dev` Revision owns the Deployment of a serverless
  revision. KServe's serverless InferenceService makes a Knative Service whose revision
  template carries the label `serving.kserve.io/inferenceservice: NAME`; Knative copies a
  revision's labels onto its Deployment and pods. With that label, and the InferenceService
  it names in the view (the view does not list Revisions), the InferenceService counts
  them; otherwise (a plain Knative Service, not read) the Deployment is counted.
- a Pod owns the worker StatefulSet of a LeaderWorkerSet group (the LWS pod controller sets
  the leader pod as its controller and labels it `leaderworkerset.sigs.k8s.io/name`): with
  that leader Pod in the view (its uid the reference's) and the LeaderWorkerSet the label
  names there too, the LeaderWorkerSet counts it. Any other StatefulSet a Pod owns is counted.

A Pod whose `status.phase` is Succeeded or Failed has ended: all its containers have
terminated and hold no device, so it is left out too (a finished training job's pods).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: (API group, kind) of the controllers whose readers count what they own, with every
#: replica: policy.readers.kubernetes (WORKLOAD_KINDS but Pod, KSERVE_KINDS) and
#: policy.readers.custom_resources.READERS. A test keeps this in step with them.
COUNTING_CONTROLLERS: frozenset[tuple[str, str]] = frozenset(
    {
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("serving.kserve.io", "InferenceService"),
        ("serving.kserve.io", "LLMInferenceService"),
        ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"),
        ("ray.io", "RayService"),
        ("ray.io", "RayCluster"),
        ("apps.nvidia.com", "NIMService"),
        ("production-stack.vllm.ai", "VLLMRuntime"),
    }
)
#: Controllers counted only when the owned object carries the label of a counting owner.
COUNTED_WITH_LABEL: dict[tuple[str, str], str] = {
    ("serving.knative.dev", "Revision"): "serving.kserve.io/inferenceservice",
    ("", "Pod"): "leaderworkerset.sigs.k8s.io/name",
}
#: Pod phases after which no container runs (Kubernetes pod lifecycle).
ENDED_PHASES = {"Succeeded", "Failed"}


def controller_of(data: Any) -> tuple[str, str] | None:
    """(API group, kind) of the object's controller reference, or None without one."""
    ref = _controller_ref(data)
    if ref is None:
        return None
    api_version = str(ref.get("apiVersion") or "")
    group = api_version.partition("/")[0] if "/" in api_version else ""
    return group, str(ref.get("kind") or "")


def counted_by_controller(data: Any) -> bool:
    """Whether the object names a controller of a kind the view reads and counts with its
    replicas. A claim only: `controller_in` decides whether that controller is there."""
    owner = controller_of(data)
    if owner is None:
        return False
    if owner in COUNTING_CONTROLLERS:
        return True
    label = COUNTED_WITH_LABEL.get(owner)
    if label is None:
        return False
    return bool(_labels(data).get(label))


#: What each counting controller makes and is the controller of, by (API group, kind): an
#: object of another kind naming it as controller is counted from its own spec.
OWNS: dict[tuple[str, str], frozenset[str]] = {
    ("apps", "Deployment"): frozenset({"ReplicaSet"}),
    ("apps", "ReplicaSet"): frozenset({"Pod"}),
    ("apps", "StatefulSet"): frozenset({"Pod"}),
    ("apps", "DaemonSet"): frozenset({"Pod"}),
    ("batch", "Job"): frozenset({"Pod"}),
    ("batch", "CronJob"): frozenset({"Job"}),
    ("serving.kserve.io", "InferenceService"): frozenset({"Deployment"}),
    ("serving.kserve.io", "LLMInferenceService"): frozenset({"Deployment", "LeaderWorkerSet"}),
    ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"): frozenset({"StatefulSet"}),
    ("ray.io", "RayService"): frozenset({"RayCluster"}),
    ("ray.io", "RayCluster"): frozenset({"Pod"}),
    ("apps.nvidia.com", "NIMService"): frozenset({"Deployment", "LeaderWorkerSet"}),
    ("production-stack.vllm.ai", "VLLMRuntime"): frozenset({"Deployment"}),
}
#: The owner named by a label (COUNTED_WITH_LABEL): (API group, kind) of the counting
#: object the label names, and the kind of object that may carry it.
LABELLED_OWNER: dict[tuple[str, str], tuple[tuple[str, str], str]] = {
    ("serving.knative.dev", "Revision"): (("serving.kserve.io", "InferenceService"), "Deployment"),
    ("", "Pod"): (("leaderworkerset.x-k8s.io", "LeaderWorkerSet"), "StatefulSet"),
}

#: Finds an object of the view by (kind, namespace, name).
Lookup = Callable[[str, str, str], Any]


def controller_in(data: Any, namespace: str, lookup: Lookup) -> Any | None:
    """The object (its data) that counts `data` through its controller reference, found with
    `lookup` in the view: the controller itself, in `data`'s namespace, of the kind and API
    group the reference names, with the reference's `uid`, and of a kind that may own
    `data`'s kind (`OWNS`). For a labelled owner (`LABELLED_OWNER`), the counting object the
    label names (a leader Pod must be there too, by uid). None when the reference is a claim
    the view does not bear out: the object is then counted, or judged, from its own spec."""
    ref = _controller_ref(data)
    if ref is None or not isinstance(data, dict):
        return None
    owner = _group_kind(ref)
    kind = str(data.get("kind") or "")
    name, uid = str(ref.get("name") or ""), str(ref.get("uid") or "")
    meta = data.get("metadata")
    namespace = str((meta.get("namespace") if isinstance(meta, dict) else None) or namespace or "default")
    if kind in OWNS.get(owner, frozenset()):
        return _found(lookup(owner[1], namespace, name), owner, uid)
    labelled = LABELLED_OWNER.get(owner)
    if labelled is None or labelled[1] != kind:
        return None
    counting = COUNTED_WITH_LABEL[owner]
    named = str(_labels(data).get(counting) or "")
    if not named:
        return None
    if owner[1] == "Pod" and _found(lookup("Pod", namespace, name), owner, uid) is None:
        return None  # the leader Pod is listed in the view: it must be there
    counted = lookup(labelled[0][1], namespace, named)
    return counted if _group_kind(counted) == labelled[0] else None


def may_count_others(data: Any) -> bool:
    """Whether other objects may be counted through this one (`controller_in`): it is of a
    kind `OWNS` names as an owner, or a leader Pod of a LeaderWorkerSet."""
    owner = _group_kind(data)
    if owner in OWNS:
        return True
    return owner == ("", "Pod") and bool(_labels(data).get(COUNTED_WITH_LABEL[("", "Pod")]))


def _controller_ref(data: Any) -> dict[str, Any] | None:
    meta = data.get("metadata") if isinstance(data, dict) else None
    refs = meta.get("ownerReferences") if isinstance(meta, dict) else None
    if not isinstance(refs, list):
        return None
    for ref in refs:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def _group_kind(data: Any) -> tuple[str, str]:
    """(API group, kind) of an object or an owner reference."""
    if not isinstance(data, dict):
        return "", ""
    api_version = str(data.get("apiVersion") or "")
    group = api_version.partition("/")[0] if "/" in api_version else ""
    return group, str(data.get("kind") or "")


def _found(candidate: Any, owner: tuple[str, str], uid: str) -> Any | None:
    """`candidate` when it is of `owner`'s group and kind and has the non-empty `uid`."""
    if not uid or _group_kind(candidate) != owner:
        return None
    meta = candidate.get("metadata")
    return candidate if isinstance(meta, dict) and str(meta.get("uid") or "") == uid else None


def _labels(data: Any) -> dict[str, Any]:
    meta = data.get("metadata") if isinstance(data, dict) else None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return labels if isinstance(labels, dict) else {}


def described(data: Any) -> str:
    """`Kind namespace/name` of an object, as warnings name it."""
    meta = data.get("metadata") if isinstance(data, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    kind = data.get("kind") if isinstance(data, dict) else None
    return f"{kind or 'object'} {meta.get('namespace') or 'default'}/{meta.get('name') or ''}"


def ended(data: Any) -> bool:
    """A Pod that has Succeeded or Failed: none of its containers runs any more."""
    if not isinstance(data, dict) or data.get("kind") != "Pod":
        return False
    status = data.get("status")
    return isinstance(status, dict) and status.get("phase") in ENDED_PHASES


def left_out(data: Any) -> bool:
    """Whether the cluster view leaves the object out whatever else it holds: a Pod that has
    ended. (What a controller counts is left out only where `controller_in` finds it.)"""
    return ended(data)

"""Which cluster objects are already counted through their controller, and which hold no GPU.

An object with a controller (`metadata.ownerReferences[]` with `controller: true`) is left
out of the cluster view only when that controller is of a kind the view itself reads and
counts with all its replicas: a Deployment's ReplicaSets and Pods, a StatefulSet's Pods, a
LeaderWorkerSet's StatefulSets, a RayCluster's Pods, the Deployment an InferenceService
makes in raw mode, ... Every object of such a kind is either counted itself or left out
for the same reason, so following one controller reference is enough.

A controller of any other kind — a Kubeflow PyTorchJob, TFJob or MPIJob, a Volcano
`batch.volcano.sh` Job, an Argo Workflow, a JobSet, a KubeRay RayJob, any operator's
custom resource — is not read: what it owns is counted from its own spec (a Pod holds its
GPUs now, a Job or RayCluster its replicas), never dropped in silence.

Two controllers are counted only with a mark the reader knows (sources in docs/DOMAINS.md):

- a Knative `serving.knative.dev` Revision owns the Deployment of a serverless
  revision. KServe's serverless InferenceService makes a Knative Service whose revision
  template carries the label `serving.kserve.io/inferenceservice: NAME`; Knative copies a
  revision's labels onto its Deployment and pods. With that label the InferenceService
  counts them; without it (a plain Knative Service, not read) the Deployment is counted.
- a Pod owns the worker StatefulSet of a LeaderWorkerSet group (the LWS pod controller sets
  the leader pod as its controller and labels it `leaderworkerset.sigs.k8s.io/name`): the
  LeaderWorkerSet counts it. A StatefulSet a Pod owns without that label is counted.

A Pod whose `status.phase` is Succeeded or Failed has ended: all its containers have
terminated and hold no device, so it is left out too (a finished training job's pods).
"""

from __future__ import annotations

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
    meta = data.get("metadata") if isinstance(data, dict) else None
    refs = meta.get("ownerReferences") if isinstance(meta, dict) else None
    if not isinstance(refs, list):
        return None
    for ref in refs:
        if isinstance(ref, dict) and ref.get("controller") is True:
            api_version = str(ref.get("apiVersion") or "")
            group = api_version.partition("/")[0] if "/" in api_version else ""
            return group, str(ref.get("kind") or "")
    return None


def counted_by_controller(data: Any) -> bool:
    """Whether a controller the view reads counts the object with its replicas."""
    owner = controller_of(data)
    if owner is None:
        return False
    if owner in COUNTING_CONTROLLERS:
        return True
    label = COUNTED_WITH_LABEL.get(owner)
    if label is None:
        return False
    meta = data.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return isinstance(labels, dict) and bool(labels.get(label))


def ended(data: Any) -> bool:
    """A Pod that has Succeeded or Failed: none of its containers runs any more."""
    if not isinstance(data, dict) or data.get("kind") != "Pod":
        return False
    status = data.get("status")
    return isinstance(status, dict) and status.get("phase") in ENDED_PHASES


def left_out(data: Any) -> bool:
    """Whether the cluster view leaves the object out: counted through its controller, or
    a Pod that has ended."""
    return counted_by_controller(data) or ended(data)

"""`--cluster kube`: the cluster view listed from the Kubernetes API.

The client is lightkube (an optional extra, `pip install 'gpuadmit[kube]'`, imported only
here): a small, typed client with a synchronous and an asyncio API, and an import of a few
modules rather than the official client's thousands of generated ones. Credentials come from
`--kubeconfig FILE`, else the pod's service account, else `$KUBECONFIG` or `~/.kube/config`
(lightkube's `KubeConfig.from_env`). The service account needs `list` on every kind below.

What is listed is what a snapshot file holds (policy.cluster.snapshot): GPU nodes,
PriorityClasses, the workloads gpuadmit reads, ServingPlans and the ConfigMaps labelled
`gpuadmit.dev/plan: "true"`, in every namespace. `gpuadmit serve --cluster kube` keeps them
current with a watch (policy.cluster.watch).
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..yamlio import Document
from .snapshot import ClusterView, view_of

SOURCE = "kube"


#: (group, version, kind, plural, namespaced) of each kind the cluster view holds. Read as
#: lightkube's generic resources: the objects arrive as the API server wrote them, and a
#: field a typed model would require cannot make the whole list unreadable.
KINDS = [
    ("", "v1", "Node", "nodes", False),
    ("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False),
    ("apps", "v1", "Deployment", "deployments", True),
    ("apps", "v1", "StatefulSet", "statefulsets", True),
    ("apps", "v1", "ReplicaSet", "replicasets", True),
    ("apps", "v1", "DaemonSet", "daemonsets", True),
    ("batch", "v1", "Job", "jobs", True),
    ("batch", "v1", "CronJob", "cronjobs", True),
    ("", "v1", "Pod", "pods", True),
    ("", "v1", "ConfigMap", "configmaps", True),
    ("leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet", "leaderworkersets", True),
    ("serving.kserve.io", "v1beta1", "InferenceService", "inferenceservices", True),
    ("serving.kserve.io", "v1alpha1", "LLMInferenceService", "llminferenceservices", True),
    ("gpuadmit.dev", "v1alpha1", "ServingPlan", "servingplans", True),
    ("ray.io", "v1", "RayService", "rayservices", True),
    ("ray.io", "v1", "RayCluster", "rayclusters", True),
    ("apps.nvidia.com", "v1alpha1", "NIMService", "nimservices", True),
    ("production-stack.vllm.ai", "v1alpha1", "VLLMRuntime", "vllmruntimes", True),
]


#: Kinds the cluster may not serve (their CRD is not installed): a 404 on their list is
#: an empty list, not an error.
OPTIONAL = {
    "LeaderWorkerSet",
    "InferenceService",
    "LLMInferenceService",
    "ServingPlan",
    "RayService",
    "RayCluster",
    "NIMService",
    "VLLMRuntime",
}
#: Label selectors a kind is listed with: only ConfigMaps that say they hold a plan.
SELECTORS: dict[str, dict[str, Any]] = {"ConfigMap": {"gpuadmit.dev/plan": "true"}}


_RESOURCES: list[tuple[str, Any, bool]] = []


def resources() -> list[tuple[str, Any, bool]]:
    """(kind, lightkube generic resource, namespaced) of every kind in KINDS.

    Made once per process: lightkube registers each class globally, and for the core group
    its lookup of an existing class misses (`"/v1"` against `"v1"`), so making one twice
    fails. A class another part of the process registered first is used as it is."""
    if _RESOURCES:
        return _RESOURCES
    from lightkube.core.resource_registry import resource_registry
    from lightkube.generic_resource import create_global_resource, create_namespaced_resource

    made = []
    for group, version, kind, plural, namespaced in KINDS:
        try:
            resource: Any = (create_namespaced_resource if namespaced else create_global_resource)(group, version, kind, plural)
        except ValueError:
            resource = resource_registry.get(f"{group}/{version}" if group else version, kind)
            if resource is None:
                raise
        made.append((kind, resource, namespaced))
    _RESOURCES[:] = made
    return _RESOURCES


def kube_config(kubeconfig: str | None) -> Any:
    """lightkube's KubeConfig from `--kubeconfig`, else the service account or $KUBECONFIG."""
    try:
        from lightkube import ConfigError, KubeConfig
    except ImportError:
        raise InputError("--cluster kube needs the Kubernetes client: pip install 'gpuadmit[kube]'") from None
    try:
        return KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
    except (ConfigError, OSError) as exc:
        raise InputError(f"--cluster kube: no usable credentials: {exc}", file=kubeconfig) from None


def as_data(obj: Any, resource: Any) -> dict[str, Any]:
    """A listed or watched object as plain data, with its apiVersion and kind."""
    data = dict(obj.to_dict())
    info = resource._api_info.resource
    data.setdefault("apiVersion", info.api_version)
    data.setdefault("kind", info.kind)
    return data


def list_kube(kubeconfig: str | None = None, timeout_s: float = 10.0) -> tuple[list[Document], dict[str, str]]:
    """Every object of every kind, and the resourceVersion each kind's list was taken at
    (where a watch of that kind starts); an unreachable API is an InputError."""
    config = kube_config(kubeconfig)  # first: without lightkube, a one-line error
    import httpx2
    from lightkube import ApiError, Client

    try:
        client = Client(config, timeout=httpx2.Timeout(timeout_s))
    except (OSError, ValueError) as exc:
        raise InputError(f"--cluster kube: no usable credentials: {exc}", file=kubeconfig) from None
    docs: list[Document] = []
    versions: dict[str, str] = {}
    try:
        with client:
            for kind, resource, namespaced in resources():
                labels = SELECTORS.get(kind)
                listed = (
                    client.list(resource, namespace="*", labels=labels) if namespaced else client.list(resource, labels=labels)
                )
                try:
                    for obj in listed:
                        docs.append(Document(as_data(obj, resource), SOURCE, len(docs), len(docs) + 1))
                    versions[kind] = listed.resourceVersion
                except ApiError as exc:
                    if kind in OPTIONAL and exc.status.code == 404:
                        continue  # its CRD is not installed: nothing of it runs
                    raise
    except ApiError as exc:
        raise InputError(f"--cluster kube: the API server refused a list: {exc}") from None
    except httpx2.HTTPError as exc:
        raise InputError(f"--cluster kube: the API server could not be reached: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - an answer the client cannot decode: one line, never a traceback
        raise InputError(f"--cluster kube: could not read the API server's answer: {type(exc).__name__}: {exc}") from None
    return docs, versions


def load_kube(kubeconfig: str | None = None, timeout_s: float = 10.0) -> ClusterView:
    """Everything the cluster view needs, listed once; an unreachable API is an InputError."""
    docs, _ = list_kube(kubeconfig, timeout_s)
    return view_of(docs, SOURCE)


def open_cluster(source: str, kubeconfig: str | None = None) -> ClusterView:
    """`kube` (the API) or a snapshot file."""
    if source == SOURCE:
        return load_kube(kubeconfig)
    from .snapshot import load_snapshot

    return load_snapshot(source)

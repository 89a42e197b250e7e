"""`--cluster kube`: the cluster view listed from the Kubernetes API.

The client is lightkube (an optional extra, `pip install 'gpuadmit[kube]'`, imported only
here): a small, typed client with a synchronous and an asyncio API, and an import of a few
modules rather than the official client's thousands of generated ones. Credentials come from
`--kubeconfig FILE`, else the pod's service account, else `$KUBECONFIG` or `~/.kube/config`
(lightkube's `KubeConfig.from_env`). The service account needs `list` on every kind below.

What is listed is what a snapshot file holds (policy.cluster.snapshot): GPU nodes,
PriorityClasses and the workloads gpuadmit reads, in every namespace.
"""

from __future__ import annotations

import functools
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
]


@functools.cache  # lightkube registers each generic resource once per process: a second list (a refresh) reuses them
def _resources() -> list[tuple[Any, bool]]:
    from lightkube.generic_resource import create_global_resource, create_namespaced_resource

    return [
        ((create_namespaced_resource if namespaced else create_global_resource)(group, version, kind, plural), namespaced)
        for group, version, kind, plural, namespaced in KINDS
    ]


def load_kube(kubeconfig: str | None = None, timeout_s: float = 10.0) -> ClusterView:
    """Everything the cluster view needs, listed once; an unreachable API is an InputError."""
    try:
        from lightkube import ApiError, Client, ConfigError, KubeConfig
    except ImportError:
        raise InputError("--cluster kube needs the Kubernetes client: pip install 'gpuadmit[kube]'") from None
    import httpx2

    try:
        config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
        client = Client(config, timeout=httpx2.Timeout(timeout_s))
    except (ConfigError, OSError) as exc:
        raise InputError(f"--cluster kube: no usable credentials: {exc}", file=kubeconfig) from None
    docs: list[Document] = []
    try:
        with client:
            for resource, namespaced in _resources():
                listed = client.list(resource, namespace="*") if namespaced else client.list(resource)
                for obj in listed:
                    data = dict(obj.to_dict())
                    info = resource._api_info.resource
                    data.setdefault("apiVersion", info.api_version)
                    data.setdefault("kind", info.kind)
                    docs.append(Document(data, SOURCE, len(docs), len(docs) + 1))
    except ApiError as exc:
        raise InputError(f"--cluster kube: the API server refused a list: {exc}") from None
    except httpx2.HTTPError as exc:
        raise InputError(f"--cluster kube: the API server could not be reached: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - an answer the client cannot decode: one line, never a traceback
        raise InputError(f"--cluster kube: could not read the API server's answer: {type(exc).__name__}: {exc}") from None
    return view_of(docs, SOURCE)


def open_cluster(source: str, kubeconfig: str | None = None) -> ClusterView:
    """`kube` (the API) or a snapshot file."""
    if source == SOURCE:
        return load_kube(kubeconfig)
    from .snapshot import load_snapshot

    return load_snapshot(source)

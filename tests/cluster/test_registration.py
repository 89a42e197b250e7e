"""The deployment manifests grant and register what the cluster view and the readers need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from policy.cluster.kube import KINDS

DEPLOY = Path(__file__).resolve().parents[2] / "samples" / "deploy"


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text(encoding="utf-8")) if isinstance(d, dict)]


def test_the_service_account_may_list_and_watch_every_kind_the_cluster_view_follows() -> None:
    role = next(
        d for d in _documents("02-rbac.yaml") if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "gpuadmit-cluster-view"
    )
    granted = {
        (group, resource)
        for rule in role["rules"]
        if {"list", "watch"} <= set(rule["verbs"])
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    missing = [(group, plural) for group, _, _, plural, _ in KINDS if (group, plural) not in granted]
    assert not missing
    binding = next(
        d
        for d in _documents("02-rbac.yaml")
        if d["kind"] == "ClusterRoleBinding" and d["roleRef"]["name"] == "gpuadmit-cluster-view"
    )
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gpuadmit", "namespace": "gpuadmit-system"}]


# -- the ValidatingWebhookConfiguration ------------------------------------------------------

#: Where the API serves each kind a reader understands: (API group, resource). A kind the
#: readers learn that is missing here fails the test below: register it, then add it.
SERVED_AS = {
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "ReplicaSet": ("apps", "replicasets"),
    "DaemonSet": ("apps", "daemonsets"),
    "Job": ("batch", "jobs"),
    "CronJob": ("batch", "cronjobs"),
    "Pod": ("", "pods"),
    "InferenceService": ("serving.kserve.io", "inferenceservices"),
    "LLMInferenceService": ("serving.kserve.io", "llminferenceservices"),
    "LeaderWorkerSet": ("leaderworkerset.x-k8s.io", "leaderworkersets"),
    "RayService": ("ray.io", "rayservices"),
    "RayCluster": ("ray.io", "rayclusters"),
    "NIMService": ("apps.nvidia.com", "nimservices"),
    "VLLMRuntime": ("production-stack.vllm.ai", "vllmruntimes"),
    "ServingPlan": ("gpuadmit.dev", "servingplans"),
    "ConfigMap": ("", "configmaps"),
}


def _webhooks() -> dict[str, dict[str, Any]]:
    (config,) = [d for d in _documents("07-webhook.yaml") if d["kind"] == "ValidatingWebhookConfiguration"]
    return {hook["name"].split(".")[0]: hook for hook in config["webhooks"]}


def _registered() -> dict[tuple[str, str], set[str]]:
    """(group, resource) -> the operations registered for it."""
    found: dict[tuple[str, str], set[str]] = {}
    for hook in _webhooks().values():
        for rule in hook["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    found.setdefault((group, resource), set()).update(rule["operations"])
    return found


def test_every_kind_the_readers_understand_is_registered_with_its_api_group() -> None:
    from policy.readers.custom_resources import READERS
    from policy.readers.kubernetes import KSERVE_KINDS, WORKLOAD_KINDS

    kinds = WORKLOAD_KINDS | KSERVE_KINDS | {kind for _, kind in READERS} | {"ServingPlan", "ConfigMap"}
    assert kinds <= set(SERVED_AS), f"say where the API serves {sorted(kinds - set(SERVED_AS))}"
    assert {group for group, _ in READERS} <= {group for group, _ in SERVED_AS.values()}
    registered = _registered()
    missing = [kind for kind in sorted(kinds) if not {"CREATE", "UPDATE"} & registered.get(SERVED_AS[kind], set())]
    assert not missing
    for kind in sorted(kinds - {"Pod"}):  # a Pod's spec cannot change its GPUs after CREATE
        assert registered[SERVED_AS[kind]] >= {"CREATE", "UPDATE"}, kind
    assert registered[("apps", "deployments/scale")] == {"UPDATE"}
    assert registered[("apps", "statefulsets/scale")] == {"UPDATE"}


def test_the_scale_subresources_registered_are_the_ones_gpuadmit_judges() -> None:
    """A scale registered but not judged would be allowed with a warning in every case; one
    judged but not registered is never sent. Each scalable kind is one the readers read."""
    from policy.cluster.snapshot import SCALABLE

    registered = {
        (group, resource.removesuffix("/scale")): ops
        for (group, resource), ops in _registered().items()
        if resource.endswith("/scale")
    }
    assert set(registered) == set(SCALABLE)
    assert all(ops == {"UPDATE"} for ops in registered.values())
    for (group, resource), kind in SCALABLE.items():
        assert SERVED_AS[kind] == (group, resource), kind
    (scale,) = [
        hook for hook in _webhooks().values() if any(r.endswith("/scale") for rule in hook["rules"] for r in rule["resources"])
    ]
    # The object of a scale request is an autoscaling/v1 Scale: a condition on a workload's
    # template would fail to evaluate and deny every scale under failurePolicy: Fail.
    assert not scale.get("matchConditions")


def _cel(expression: str, data: dict[str, Any]) -> Any:
    """A matchCondition evaluated as the API server does: `object` and `request` are dynamic."""
    from cel_expr_python import cel

    env = cel.NewEnv(variables={"object": cel.Type.DYN, "request": cel.Type.DYN, "oldObject": cel.Type.DYN})
    value = env.compile(expression).eval(data=data)
    assert value.type() != cel.Type.ERROR, value.plain_value()
    return value.plain_value()


def _admitted(hook: str, obj: dict[str, Any]) -> bool:
    """Whether every matchCondition of `hook` lets `obj` through (all must be true)."""
    request = {"operation": "CREATE", "subResource": ""}
    return all(_cel(c["expression"], {"object": obj, "request": request}) for c in _webhooks()[hook].get("matchConditions", []))


GPU = {"limits": {"nvidia.com/gpu": "1"}}


def _pod(*, main_gpu: bool = False, sidecar_gpu: bool = False, init_gpu: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "app:1", **({"resources": GPU} if main_gpu else {})}]}
    init = []
    if sidecar_gpu:
        init.append({"name": "engine", "image": "vllm:1", "restartPolicy": "Always", "resources": GPU})
    if init_gpu:  # an ordinary init container: done before the pod serves
        init.append({"name": "warmup", "image": "warm:1", "resources": GPU})
    if init:
        spec["initContainers"] = init
    return spec


@pytest.mark.parametrize(
    ("pod", "sent"),
    [
        (_pod(main_gpu=True), True),
        (_pod(sidecar_gpu=True), True),
        (_pod(init_gpu=True), False),
        (_pod(), False),
    ],
    ids=["gpu-container", "gpu-native-sidecar", "gpu-init-container-only", "no-gpu"],
)
def test_match_conditions_send_gpu_containers_and_gpu_native_sidecars_only(pod: dict[str, Any], sent: bool) -> None:
    template = {"metadata": {"labels": {"app": "a"}}, "spec": pod}
    meta = {"name": "a", "namespace": "prod"}
    assert _admitted("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod}) is sent
    assert (
        _admitted("workloads", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {"template": template}})
        is sent
    )
    cron = {"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}}
    assert _admitted("cronjobs", {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta, "spec": cron}) is sent
    lws = {"leaderWorkerTemplate": {"size": 2, "workerTemplate": template}}
    assert (
        _admitted(
            "leaderworkersets",
            {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": meta, "spec": lws},
        )
        is sent
    )
    plain = {"metadata": {}, "spec": _pod()}
    with_leader = {"leaderWorkerTemplate": {"size": 2, "leaderTemplate": template, "workerTemplate": plain}}
    obj = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": meta, "spec": with_leader}
    assert _admitted("leaderworkersets", obj) is sent


def test_a_pod_a_controller_owns_is_not_sent() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "ownerReferences": [{"kind": "ReplicaSet", "name": "r", "uid": "u", "controller": True}]},
        "spec": _pod(sidecar_gpu=True),
    }
    assert _admitted("pods", pod) is False


def test_the_readers_count_a_gpu_native_sidecar_and_not_an_init_container() -> None:
    from policy.readers import kubernetes
    from policy.yamlio import Document

    def holds_a_gpu(spec: dict[str, Any]) -> bool:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "prod"}, "spec": spec}
        return kubernetes.placements([Document(pod, "pod.yaml", 0, 1)])[0].gpu

    assert holds_a_gpu(_pod(sidecar_gpu=True))
    assert not holds_a_gpu(_pod(init_gpu=True))


def test_the_cluster_view_lists_every_kind_the_readers_understand_and_a_snapshot_keeps() -> None:
    from policy.cluster.snapshot import KINDS as SNAPSHOT_KINDS

    listed = {kind for _, _, kind, _, _ in KINDS}
    assert listed == SNAPSHOT_KINDS
    assert set(SERVED_AS) <= listed
    for group, _, kind, plural, _ in KINDS:
        assert SERVED_AS.get(kind, (group, plural)) == (group, plural), kind

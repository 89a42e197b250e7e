"""The deployment manifests grant and register what the cluster view and the readers need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

"""A custom resource with a malformed count is bad input to the webhook: denied with the
field and the value, whether or not it fails open (`--fail-open` covers gpuadmit's own
failures, never bad input)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from test_judging import SETTINGS, answer, client
from webhook_support import review

SHOWN = {"4": "'4'", -1: "-1", True: "True", 2.5: "2.5"}


def _leader_worker_set(replicas: Any) -> dict[str, Any]:
    container = {"name": "c", "image": "vllm/vllm-openai:v0.8.5", "resources": {"limits": {"nvidia.com/gpu": 1}}}
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "lws", "namespace": "team-a", "uid": "u-1"},
        "spec": {
            "replicas": replicas,
            "leaderWorkerTemplate": {"size": 2, "workerTemplate": {"spec": {"containers": [container]}}},
        },
    }


@pytest.mark.parametrize("fail_open", [False, True], ids=["failing-closed", "failing-open"])
@pytest.mark.parametrize("replicas", list(SHOWN), ids=[repr(v) for v in SHOWN])
def test_a_malformed_count_is_denied_as_bad_input(replicas: Any, fail_open: bool) -> None:
    request = review(_leader_worker_set(replicas), kind=("leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet"))
    body = answer(client(replace(SETTINGS, fail_open=fail_open)), request)
    assert body["allowed"] is False, body
    assert body["status"]["code"] == 403
    assert f"spec.replicas: expected a whole number ≥ 0, got {SHOWN[replicas]}" in body["status"]["message"]


def test_a_well_formed_count_is_judged() -> None:
    request = review(_leader_worker_set(2), kind=("leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet"))
    body = answer(client(SETTINGS), request)
    assert "expected a whole number" not in str(body)

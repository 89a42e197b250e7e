"""LeaderWorkerSets and Pods whose GPU is in a native sidecar, judged by a real `gpuadmit serve
--cluster kube` process over TLS beside what the (fake) API server lists: the kinds the
webhook configuration sends are the kinds the webhook judges with their neighbours."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes.kube_api import FakeApiServer
from fakes.webhook_servers import webhook_support

pytest.importorskip("lightkube")

DATA = Path(__file__).parent / "data"
ITEMS = yaml.safe_load((DATA / "snapshot.yaml").read_text(encoding="utf-8"))["items"]
SHARED_A100 = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB-SHARED"}


support = webhook_support()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("kinds")
    with FakeApiServer(ITEMS) as api:
        server = support.start_server(folder, "--cluster", "kube", "--kubeconfig", str(api.kubeconfig(folder)))
        try:
            yield server
        finally:
            server.stop()


def _sidecar_pod(gpu_gb: int) -> dict[str, Any]:
    """A bare Pod whose only GPU container is a native sidecar (the engine beside a proxy)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "embed", "namespace": "prod", "annotations": {"gpuadmit.dev/gpu-gb": str(gpu_gb)}},
        "spec": {
            "nodeSelector": SHARED_A100,
            "initContainers": [
                {
                    "name": "engine",
                    "image": "tei:1.7",
                    "restartPolicy": "Always",
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
            "containers": [{"name": "proxy", "image": "envoy:1.31"}],
        },
    }


def _lws(gpu_gb: int) -> dict[str, Any]:
    """A LeaderWorkerSet of one group of two pods, each with a GPU of the shared A100 pool."""
    template = {
        "metadata": {"labels": {"app": "multi"}},
        "spec": {
            "nodeSelector": SHARED_A100,
            "containers": [
                {
                    "name": "tei",
                    "image": "ghcr.io/huggingface/text-embeddings-inference:1.7",
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
        },
    }
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "multi", "namespace": "prod", "annotations": {"gpuadmit.dev/gpu-gb": str(gpu_gb)}},
        "spec": {"replicas": 1, "leaderWorkerTemplate": {"size": 2, "workerTemplate": template}},
    }


def _answer(served: Any, obj: dict[str, Any], kind: tuple[str, str, str]) -> dict[str, Any]:
    answer: dict[str, Any] = served.review(support.review(obj, kind=kind, dry_run=True))["response"]
    return answer


POD = ("", "v1", "Pod")
LWS = ("leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet")


def test_a_pod_whose_gpu_is_a_native_sidecar_is_judged_with_its_neighbours(served: Any) -> None:
    # Beside chat-llm (vLLM at 0.6 of the 80 GB GPU: 48 GB), 8 GB fit and 40 GB do not.
    assert _answer(served, _sidecar_pod(8), POD)["allowed"] is True
    denied = _answer(served, _sidecar_pod(40), POD)
    assert denied["allowed"] is False and "[memory-fit]" in denied["status"]["message"]


def test_a_leader_worker_set_is_judged_with_its_neighbours(served: Any) -> None:
    # Two pods of 8 GB beside chat-llm fit on the time-sliced GPU; two of 20 GB do not.
    small = _answer(served, _lws(8), LWS)
    assert small["allowed"] is True, small
    denied = _answer(served, _lws(20), LWS)
    assert denied["allowed"] is False and "[memory-fit]" in denied["status"]["message"]

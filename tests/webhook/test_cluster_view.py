"""`gpuadmit serve --cluster FILE`: each admitted object is judged with what the cluster
snapshot runs in its sharing domains; `deployments/scale` is judged with the new count."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from webhook_support import Server, review, start_server

DATA = Path(__file__).resolve().parents[1] / "cluster" / "data"
DEPLOYMENT = ("apps", "v1", "Deployment")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("cluster-view"), "--cluster", str(DATA / "snapshot.yaml"))
    yield running
    running.stop()


def _manifest(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DATA / name).read_text(encoding="utf-8"))
    return data


def _scale(name: str, replicas: int, resource: str = "deployments") -> dict[str, Any]:
    scale = {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": name, "namespace": "prod"},
        "spec": {"replicas": replicas},
    }
    request = review(scale, operation="UPDATE", kind=("autoscaling", "v1", "Scale"))
    request["request"]["resource"] = {"group": "apps", "version": "v1", "resource": resource}
    request["request"]["subResource"] = "scale"
    return request


def _response(server: Server, request: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = server.review(request)["response"]
    return body


def test_a_deployment_that_overflows_beside_the_running_chat_model_is_denied(server: Server) -> None:
    body = _response(server, review(_manifest("new-embeddings.yaml"), kind=DEPLOYMENT))
    assert body["allowed"] is False
    message = body["status"]["message"]
    assert message.startswith("gpuadmit: Deployment prod/embeddings is unsafe")
    assert "[memory-fit] shared-nvidia-a100-sxm4-80gb: 81.5 GiB committed > 76.0 GiB usable" in message


def test_a_deployment_that_fits_beside_it_is_allowed(server: Server) -> None:
    body = _response(server, review(_manifest("new-embeddings-small.yaml"), kind=DEPLOYMENT))
    assert body["allowed"] is True, body


def test_scaling_the_chat_model_beyond_its_gpu_is_denied(server: Server) -> None:
    body = _response(server, _scale("chat-llm", 2))
    assert body["allowed"] is False
    assert "[memory-fit]" in body["status"]["message"]


def test_scaling_within_capacity_is_allowed(server: Server) -> None:
    assert _response(server, _scale("chat-llm", 1))["allowed"] is True


def test_a_scale_of_an_object_the_snapshot_lacks_is_allowed_with_a_warning(server: Server) -> None:
    body = _response(server, _scale("unknown", 9))
    assert body["allowed"] is True
    assert body["warnings"] == ["gpuadmit: deployments/scale of prod/unknown is not in the cluster view; not judged"]


def test_an_update_of_the_running_object_replaces_it(server: Server) -> None:
    snapshot = yaml.safe_load((DATA / "snapshot.yaml").read_text(encoding="utf-8"))
    chat = next(i for i in snapshot["items"] if i["kind"] == "Deployment" and i["metadata"]["name"] == "chat-llm")
    assert _response(server, review(chat, operation="UPDATE", kind=DEPLOYMENT, old=chat))["allowed"] is True

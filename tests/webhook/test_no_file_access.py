"""Admission reads nothing from its own disk on behalf of an admitted object.

Objects that name a Triton model repository which exists on the server's disk (the
server runs in the project root, where samples/triton is a real repository) get the
same answer as objects naming one that exists nowhere, and the answer names no path.
"""

from __future__ import annotations

from typing import Any

import pytest
from webhook_support import ROOT, SAMPLES, Server, review, serving_plan

REPOSITORY = SAMPLES / "triton"
#: Ways an object can name that repository: absolute, and relative to the server's
#: working directory (findings of a ServingPlan are filed under servingplan/<ns>/<name>).
ON_SERVER_DISK = [str(REPOSITORY), "../../samples/triton", "samples/triton"]
NOWHERE = "/nonexistent/gpuadmit-models"
DEPLOYMENT_KIND = ("apps", "v1", "Deployment")


def _plan(repository: str) -> dict[str, Any]:
    spec = {
        "gpus": [{"id": "gpu0", "product": "H100-SXM-80GB"}],
        "triton": {"repository": repository, "args": ["--rate-limit=execution_count"]},
        "models": [
            {"name": "chat-llm", "gpu_gb": 16, "latency_critical": True, "sla_ms": 300},
            {"name": "sidecar", "framework": "pytorch", "gpu": "gpu0", "gpu_gb": 1, "caps": {"max_batch_size": 4}},
        ],
    }
    return serving_plan(spec)


def _tritonserver(args: list[str], annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "triton", "namespace": "team-a", "annotations": {"gpuadmit.dev/gpu-gb": "16", **annotations}},
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                    "containers": [
                        {
                            "name": "triton",
                            "image": "nvcr.io/nvidia/tritonserver:25.01-py3",
                            "args": ["tritonserver", *args],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ],
                }
            },
        },
    }


def _answer(server: Server, obj: dict[str, Any], kind: tuple[str, str, str] | None = None) -> dict[str, Any]:
    request = review(obj, uid="same-uid") if kind is None else review(obj, kind=kind, uid="same-uid")
    body: dict[str, Any] = server.review(request)["response"]
    return body


def _names_no_path(answer: dict[str, Any], path: str) -> None:
    text = repr(answer)
    for fragment in {path, str(ROOT), "samples/triton", NOWHERE}:
        assert fragment not in text, f"the answer names {fragment!r}: {text}"


@pytest.mark.parametrize("path", ON_SERVER_DISK)
def test_serving_plan_naming_a_repository_on_the_servers_disk_is_judged_without_reading_it(server: Server, path: str) -> None:
    answer = _answer(server, _plan(path))
    assert answer == _answer(server, _plan(NOWHERE))
    _names_no_path(answer, path)
    assert answer["allowed"] is False
    message = answer["status"]["message"]
    assert (
        "[repository-read] triton.repository was not followed: admission reads no files, so the repository's models "
        "were not judged (nor the 1 `models` entries without a GPU that describe them)"
    ) in message
    assert "gpuadmit lint <repository>" in message
    # The model that runs beside the server is still judged.
    assert "chat-llm" not in message and "embeddings" not in message


@pytest.mark.parametrize("path", ON_SERVER_DISK)
def test_triton_repository_annotation_on_the_servers_disk_is_not_read(server: Server, path: str) -> None:
    annotated = _tritonserver([], {"gpuadmit.dev/triton-repository": path})
    answer = _answer(server, annotated, DEPLOYMENT_KIND)
    assert answer == _answer(server, _tritonserver([], {"gpuadmit.dev/triton-repository": NOWHERE}), DEPLOYMENT_KIND)
    _names_no_path(answer, path)
    assert answer["allowed"] is False
    assert (
        "[repository-read] triton: gpuadmit.dev/triton-repository was not followed: admission reads no files"
        in answer["status"]["message"]
    )


@pytest.mark.parametrize("path", ON_SERVER_DISK)
def test_model_repository_flag_on_the_servers_disk_is_not_read(server: Server, path: str) -> None:
    flagged = _tritonserver([f"--model-repository={path}"], {})
    answer = _answer(server, flagged, DEPLOYMENT_KIND)
    assert answer == _answer(server, _tritonserver([f"--model-repository={NOWHERE}"], {}), DEPLOYMENT_KIND)
    _names_no_path(answer, path)
    # The container is judged as one model (16 GiB declared); the flag alone is a warning.
    assert answer["allowed"] is True
    assert [w for w in answer["warnings"] if w.startswith("[repository-read]")] == [
        "[repository-read] triton: --model-repository was not followed: admission reads no files; the container is judged as..."
    ]

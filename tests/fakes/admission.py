"""AdmissionReviews as the API server writes them, and the webhook app answering them in
this process (Starlette through httpx's ASGI transport: no socket, no TLS; the real server
over TLS is `webhook_servers`)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

SERVING_PLAN = ("gpuadmit.dev", "v1alpha1", "ServingPlan")
DEPLOYMENT = ("apps", "v1", "Deployment")


def review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    kind: tuple[str, str, str] = SERVING_PLAN,
    dry_run: bool = False,
    uid: str | None = None,
    old: dict[str, Any] | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """An admission.k8s.io/v1 AdmissionReview request; its namespace is the object's unless
    given (the object of a CREATE may leave its own out)."""
    group, version, kind_name = kind
    meta = (obj or old or {}).get("metadata", {})
    request: dict[str, Any] = {
        "uid": uid if uid is not None else str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": kind_name},
        "resource": {"group": group, "version": version, "resource": kind_name.lower() + "s"},
        "requestKind": {"group": group, "version": version, "kind": kind_name},
        "name": meta.get("name", ""),
        "namespace": namespace if namespace is not None else meta.get("namespace", ""),
        "operation": operation,
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": f"{operation.title()}Options"},
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


#: A cluster snapshot of one node of time-sliced A100 80GB GPUs (76 GiB usable each).
SHARED_A100_NODES = """\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Node
    metadata:
      name: gpu-a100-1
      labels: {nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB-SHARED, nvidia.com/gpu.memory: "81920"}
"""


def shared_a100_deployment(name: str, gpu_gb: float = 14.0) -> dict[str, Any]:
    """One replica of `gpu_gb` + a 0.5 GiB CUDA context on the shared A100s: at 14 GiB, five
    fit in 76 GiB usable, six do not."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "prod", "annotations": {"gpuadmit.dev/gpu-gb": str(gpu_gb)}},
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB-SHARED"},
                    "containers": [{"name": "c", "image": "server:1", "resources": {"limits": {"nvidia.com/gpu": 1}}}],
                }
            },
        },
    }


def webhook(**settings: Any) -> Any:
    """The `Webhook` of `gpuadmit serve` with these settings (plain HTTP), in this process."""
    from webhook.app import Webhook
    from webhook.config import ServeConfig
    from webhook.metrics import Metrics
    from webhook.ruleset import RuleHolder

    config = ServeConfig(plain_http=True, **settings)
    metrics = Metrics()
    return Webhook(config, RuleHolder(config, metrics), metrics, None)


def webhook_app(**settings: Any) -> Any:
    """The admission app of `gpuadmit serve` with these settings (plain HTTP), in this process."""
    from webhook.app import build_app

    return build_app(webhook(**settings))


def answer(app: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The `response` of the AdmissionReview the app answers to `request`."""
    import httpx

    async def post() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gpuadmit") as http:
            reply = await http.post("/validate", json=request)
        assert reply.status_code == 200, reply.text
        response: dict[str, Any] = reply.json()["response"]
        return response

    return asyncio.run(post())

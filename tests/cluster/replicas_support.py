"""What the replica race tests share: a cluster with one time-sliced A100 pool, Deployments
that fill it five at a time, and webhook apps (`serve --cluster kube`) that share a fake API
server's Leases, each with its own memory."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
from fakes.admission import shared_a100_deployment

from webhook.app import Webhook, build_app
from webhook.config import ServeConfig
from webhook.metrics import Metrics
from webhook.ruleset import RuleHolder

PRODUCT = "NVIDIA-A100-SXM4-80GB-SHARED"
#: One GPU node of the pool: 80 GiB, time-sliced (the device plugin's -SHARED product).
NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {"name": "gpu-a100-1", "labels": {"nvidia.com/gpu.product": PRODUCT, "nvidia.com/gpu.memory": "81920"}},
}
POOL = "shared-nvidia-a100-sxm4-80gb"


#: One replica of `gpu_gb` + a 0.5 GiB CUDA context: five fit in 76 GiB usable, six do not.
deployment = shared_a100_deployment


def create(obj: dict[str, Any], *, dry_run: bool = False, uid: str | None = None) -> dict[str, Any]:
    """A Deployment CREATE as the API server sends it."""
    meta = obj["metadata"]
    request = {
        "uid": uid or str(uuid.uuid4()),
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": meta["name"],
        "namespace": meta["namespace"],
        "operation": "CREATE",
        "userInfo": {"username": "alice"},
        "object": obj,
        "dryRun": dry_run,
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


#: Every replica made, closed by `close_replicas` (their API connections).
OPENED: list[Webhook] = []


def replica(kubeconfig: Path, **settings: Any) -> Any:
    """One webhook replica's app: its own cluster view and reservations, Leases shared."""
    config = ServeConfig(plain_http=True, cluster="kube", kubeconfig=str(kubeconfig), deadline_s=20.0, **settings)
    metrics = Metrics()
    webhook = Webhook(config, RuleHolder(config, metrics), metrics, None)
    OPENED.append(webhook)
    return build_app(webhook)


def close_replicas() -> None:
    while OPENED:
        OPENED.pop().close()


async def send(apps: list[Any], reviews: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All `reviews` at once, dealt to the apps in turn; the answers in the same order."""
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gpuadmit", timeout=60) for app in apps]
    try:
        replies = await asyncio.gather(*(clients[n % len(clients)].post("/validate", json=r) for n, r in enumerate(reviews)))
    finally:
        for client in clients:
            await client.aclose()
    return [reply.json()["response"] for reply in replies]


async def scrape(app: Any) -> str:
    """The app's /metrics text."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gpuadmit") as http:
        return (await http.get("/metrics")).text


def messages(answers: list[dict[str, Any]]) -> list[str]:
    return [a.get("status", {}).get("message", "")[:160] for a in answers]

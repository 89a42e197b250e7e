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


def webhook_app(**settings: Any) -> Any:
    """The admission app of `gpuadmit serve` with these settings (plain HTTP), in this process."""
    from webhook.app import Webhook, build_app
    from webhook.config import ServeConfig
    from webhook.metrics import Metrics
    from webhook.ruleset import RuleHolder

    config = ServeConfig(plain_http=True, **settings)
    metrics = Metrics()
    return build_app(Webhook(config, RuleHolder(config, metrics), metrics, None))


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

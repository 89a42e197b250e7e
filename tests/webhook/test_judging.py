"""The app in-process: failure handling, audit mode and the deadline, which a healthy
server process cannot be made to show on demand."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from typing import Any

import httpx
import pytest
from webhook_support import review, sample_plan, serving_plan

from webhook.app import Webhook, build_app
from webhook.config import ServeConfig
from webhook.metrics import Metrics
from webhook.ruleset import RuleHolder


class Exploding:
    """A linter that fails the way a bug would."""

    def lint_sources(self, sources: Any, read: Any = None) -> Any:
        raise RuntimeError("capacity provider vanished")


class Stuck:
    """A linter that never answers (until released)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def lint_sources(self, sources: Any, read: Any = None) -> Any:
        self.release.wait(1.0)  # bounded, so the worker thread ends soon after the test
        raise RuntimeError("released")


class Client:
    """POSTs to the app in-process (no lifespan: signal handlers belong to a real server)."""

    def __init__(self, settings: ServeConfig, linter: Any = None) -> None:
        metrics = Metrics()
        rules = RuleHolder(settings, metrics)
        if linter is not None:
            rules.current = linter
        self.app = build_app(Webhook(settings, rules, metrics, None))

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gpuadmit") as http:
                return await http.post(path, **kwargs)

        return asyncio.run(go())


def client(settings: ServeConfig, linter: Any = None) -> Client:
    return Client(settings, linter)


def answer(test_client: Client, request: dict[str, Any]) -> dict[str, Any]:
    reply = test_client.post("/validate", json=request)
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()["response"]
    return body


SETTINGS = ServeConfig(plain_http=True)


def test_internal_error_denies_with_the_reason() -> None:
    body = answer(client(SETTINGS, Exploding()), review(serving_plan(sample_plan("seed-demo-safe.yaml")), uid="boom"))
    assert body["uid"] == "boom"
    assert body["allowed"] is False
    assert body["status"]["code"] == 500
    assert body["status"]["message"] == (
        "gpuadmit could not judge ServingPlan team-a/node-a: internal error (RuntimeError: capacity provider vanished)"
    )
    assert "Traceback" not in body["status"]["message"]


def test_internal_error_allows_with_a_warning_when_failing_open() -> None:
    body = answer(client(replace(SETTINGS, fail_open=True), Exploding()), review(serving_plan(sample_plan("seed-demo.yaml"))))
    assert body["allowed"] is True
    assert body["warnings"][0].startswith("gpuadmit could not judge ServingPlan team-a/node-a: internal error")
    assert len(body["warnings"][0]) < 120


def test_the_api_servers_timeout_parameter_shortens_the_deadline() -> None:
    stuck = Stuck()
    settings = replace(SETTINGS, deadline_s=30.0, inline_max_bytes=0)
    try:  # the API server appends its timeoutSeconds; we answer within 80 % of it
        reply = client(settings, stuck).post(
            "/validate?dryRun=false&timeout=0.25s", json=review(serving_plan(sample_plan("seed-demo-safe.yaml")))
        )
    finally:
        stuck.release.set()
    assert reply.json()["response"]["status"]["message"].endswith("no verdict within the 0.2 s deadline")


def test_deadline_answers_before_the_api_server_gives_up() -> None:
    stuck = Stuck()
    settings = replace(SETTINGS, deadline_s=0.2, inline_max_bytes=0)
    try:
        body = answer(client(settings, stuck), review(serving_plan(sample_plan("seed-demo-safe.yaml"))))
    finally:
        stuck.release.set()
    assert body["allowed"] is False
    assert body["status"]["message"] == "gpuadmit could not judge ServingPlan team-a/node-a: no verdict within the 0.2 s deadline"


def test_audit_mode_allows_and_reports_what_it_would_deny() -> None:
    body = answer(client(replace(SETTINGS, mode="audit")), review(serving_plan(sample_plan("seed-demo.yaml"))))
    assert body["allowed"] is True
    assert "status" not in body
    assert "would deny: [latency-critical-rate-limit] chat-llm: latency-critical but has no rate limit" in body["warnings"]
    assert all(len(w) < 120 for w in body["warnings"])
    assert body["auditAnnotations"]["decision"] == "would-deny"
    assert body["auditAnnotations"]["errors"] == "6"
    assert "bulk-capped:embeddings" in body["auditAnnotations"]["findings"]


def test_judging_in_a_worker_thread_gives_the_same_verdict() -> None:
    inline = answer(client(SETTINGS), review(serving_plan(sample_plan("seed-demo.yaml")), uid="x"))
    threaded = answer(client(replace(SETTINGS, inline_max_bytes=0)), review(serving_plan(sample_plan("seed-demo.yaml")), uid="x"))
    assert inline == threaded
    assert inline["allowed"] is False


def test_status_subresource_updates_are_not_judged() -> None:
    request = review(serving_plan(sample_plan("seed-demo.yaml")), operation="UPDATE", uid="st")
    request["request"]["subResource"] = "status"
    assert answer(client(SETTINGS), request) == {"uid": "st", "allowed": True}


def test_many_warnings_are_capped_and_each_is_short() -> None:
    gpus = [{"id": f"gpu{i}", "memory_gb": 80, "sharing": "exclusive"} for i in range(30)]
    models = [
        {
            "name": f"summariser-with-a-rather-long-name-{i:02d}",
            "framework": "pytorch",
            "gpu": f"gpu{i}",
            "gpu_gb": 70,
            "sla_ms": 2000,
        }
        for i in range(30)
    ]
    body = answer(client(SETTINGS), review(serving_plan({"gpus": gpus, "models": models})))
    assert body["allowed"] is True
    assert len(body["warnings"]) == 16
    assert body["warnings"][-1] == "gpuadmit: 15 more findings not shown"
    assert all(len(w) < 120 for w in body["warnings"])


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        (b"", 400, "request body is empty"),
        (b"[1, 2]", 400, "expected an AdmissionReview object, got a JSON list"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', 400, "AdmissionReview has no `request` object"),
    ],
)
def test_bodies_that_are_not_reviews_are_400s(body: bytes, status: int, text: str) -> None:
    reply = client(SETTINGS).post("/validate", content=body)
    assert reply.status_code == status
    assert text in reply.text

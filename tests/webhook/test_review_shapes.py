"""Reviews the API server sends at the edges: objects being deleted, reviews with no object
or no operation, numbers no GPU has, and the deadline on the default (inline) path.
Bad input is a deny in every mode; `--fail-open` only covers gpuadmit's own failures."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
from webhook_support import review, sample_plan, serving_plan

from webhook.app import Webhook, build_app
from webhook.config import ServeConfig
from webhook.metrics import Metrics
from webhook.ruleset import RuleHolder

ENFORCE = ServeConfig(plain_http=True)
FAIL_OPEN = replace(ENFORCE, fail_open=True)
AUDIT = replace(ENFORCE, mode="audit")
FIVE_THOUSAND_DIGITS = "9" * 5000


def answer(settings: ServeConfig, request: dict[str, Any], linter: Any = None, path: str = "/validate") -> dict[str, Any]:
    metrics = Metrics()
    rules = RuleHolder(settings, metrics)
    if isinstance(linter, Slow):
        linter.inner = rules.current
    if linter is not None:
        rules.current = linter
    app = build_app(Webhook(settings, rules, metrics, None))

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gpuadmit") as http:
            return await http.post(path, json=request)

    reply = asyncio.run(go())
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()["response"]
    assert body["uid"] == request["request"]["uid"]
    return body


def unsafe() -> dict[str, Any]:
    return serving_plan(sample_plan("seed-demo.yaml"))


def terminating(obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"]["deletionTimestamp"] = "2026-12-01T10:00:00Z"
    obj["metadata"]["finalizers"] = []
    return obj


def test_removing_the_last_finalizer_of_an_unsafe_object_being_deleted_is_allowed() -> None:
    old = terminating(unsafe())
    old["metadata"]["finalizers"] = ["example.com/cleanup"]
    body = answer(ENFORCE, review(terminating(unsafe()), operation="UPDATE", old=old))
    assert body["allowed"] is True
    assert body["warnings"] == ["gpuadmit: ServingPlan team-a/node-a is being deleted; not judged"]


def test_an_unsafe_update_not_being_deleted_is_still_denied() -> None:
    body = answer(ENFORCE, review(unsafe(), operation="UPDATE", old=unsafe()))
    assert body["allowed"] is False and body["status"]["code"] == 403


def test_a_create_carrying_a_deletion_timestamp_is_judged() -> None:
    # Only an UPDATE can take finalizers off; a CREATE with the field set is judged as any other.
    body = answer(ENFORCE, review(terminating(unsafe())))
    assert body["allowed"] is False and body["status"]["code"] == 403


@pytest.mark.parametrize("settings", [ENFORCE, FAIL_OPEN, AUDIT], ids=["enforce", "fail-open", "audit"])
@pytest.mark.parametrize("obj", [{}, None], ids=["empty-object", "no-object"])
@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
def test_a_create_or_update_with_no_object_is_denied_as_malformed(settings: ServeConfig, obj: Any, operation: str) -> None:
    request = review(unsafe(), operation=operation)
    request["request"]["object"] = obj
    if obj is None:
        del request["request"]["object"]
    body = answer(settings, request)
    assert body["allowed"] is False
    assert body["status"]["code"] == 400
    assert body["status"]["message"].startswith(f"gpuadmit: malformed AdmissionReview: {operation} of ServingPlan")


@pytest.mark.parametrize("settings", [ENFORCE, FAIL_OPEN, AUDIT], ids=["enforce", "fail-open", "audit"])
@pytest.mark.parametrize("operation", [None, "", "PATCH", 7], ids=["missing", "empty", "PATCH", "number"])
def test_a_review_with_no_known_operation_is_denied_as_malformed(settings: ServeConfig, operation: Any) -> None:
    request = review(serving_plan(sample_plan("seed-demo-safe.yaml")))
    if operation is None:
        del request["request"]["operation"]
    else:
        request["request"]["operation"] = operation
    body = answer(settings, request)
    assert body["allowed"] is False
    assert body["status"]["code"] == 400
    assert "malformed AdmissionReview" in body["status"]["message"]


def test_delete_is_allowed_without_an_object() -> None:
    request = review(None, operation="DELETE", old=unsafe())
    assert answer(ENFORCE, request) == {"uid": request["request"]["uid"], "allowed": True}


def mig_plan(profile: str) -> dict[str, Any]:
    return serving_plan(
        {
            "gpus": [{"id": "gpu0", "product": "A100-SXM4-80GB", "sharing": "mig", "mig": [profile]}],
            "models": [{"name": "chat", "framework": "pytorch", "gpu": "gpu0:0", "gpu_gb": 10}],
        }
    )


@pytest.mark.parametrize("settings", [ENFORCE, FAIL_OPEN], ids=["enforce", "fail-open"])
@pytest.mark.parametrize(
    "profile",
    [f"3g.{FIVE_THOUSAND_DIGITS}gb", f"{FIVE_THOUSAND_DIGITS}g.40gb", "3g.99999999999999999999gb", "3g.5000gb"],
    ids=["5000-digit-memory", "5000-digit-compute", "past-int64", "past-the-largest-gpu"],
)
def test_a_mig_profile_with_a_huge_number_is_denied_in_every_mode(settings: ServeConfig, profile: str) -> None:
    body = answer(settings, review(mig_plan(profile)))
    assert body["allowed"] is False
    assert body["status"]["code"] == 403  # a finding about the input, not a 500 "internal error"
    assert "is not a MIG profile such as 3g.40gb" in body["status"]["message"]
    assert "internal error" not in body["status"]["message"]


def test_a_real_mig_profile_still_passes() -> None:
    body = answer(ENFORCE, review(mig_plan("3g.40gb")))
    assert body["allowed"] is True, body.get("status")


class Slow:
    """The real linter, answering only after `seconds` (it blocks whoever calls it)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0
        self.inner: Any = None

    def lint_sources(self, sources: Any, read: Any = None) -> Any:
        self.calls += 1
        time.sleep(self.seconds)
        return self.inner.lint_sources(sources, read)

    @property
    def config(self) -> Any:
        """The real linter's project config (its `fail_on` decides the verdict)."""
        return self.inner.config


def test_the_deadline_holds_on_the_default_inline_path() -> None:
    settings = replace(ENFORCE, deadline_s=0.2)
    assert settings.inline_max_bytes > 10_000  # the default: this small review is judged on the event loop
    slow = Slow(0.5)
    safe = review(serving_plan(sample_plan("seed-demo-safe.yaml")))
    assert answer(settings, safe, linter=Slow(0.0))["allowed"] is True  # in time: the verdict
    body = answer(settings, safe, linter=slow)
    assert slow.calls == 1
    assert body["allowed"] is False  # too late: the deadline's answer, not the (allowing) verdict
    assert body["status"]["message"] == "gpuadmit could not judge ServingPlan team-a/node-a: no verdict within the 0.2 s deadline"


def test_the_deadline_holds_on_the_default_inline_path_when_failing_open() -> None:
    settings = replace(FAIL_OPEN, deadline_s=0.2)
    body = answer(settings, review(serving_plan(sample_plan("seed-demo-safe.yaml"))), linter=Slow(0.5))
    assert body["allowed"] is True
    assert body["warnings"][0].startswith("gpuadmit could not judge ServingPlan team-a/node-a: no verdict within the 0.2")

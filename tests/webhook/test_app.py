"""`POST /validate` on a real `gpuadmit serve` over HTTPS, as the API server calls it."""

from __future__ import annotations

import json
from typing import Any

from webhook_support import SAMPLES, Server, poll, review, sample_plan, serving_plan

NEARLY_FULL = {
    "gpus": [{"id": "gpu0", "memory_gb": 80, "sharing": "exclusive"}],
    "models": [{"name": "summariser", "framework": "pytorch", "gpu": "gpu0", "gpu_gb": 70, "sla_ms": 2000}],
}
CONFIGMAP_KIND = ("", "v1", "ConfigMap")


def response(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    body: dict[str, Any] = answer["response"]
    return body


def configmap(data: dict[str, str], labelled: bool = True) -> dict[str, Any]:
    labels = {"gpuadmit.dev/plan": "true"} if labelled else {"app": "chat"}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "serving", "namespace": "team-a", "labels": labels},
        "data": data,
    }


def test_unsafe_serving_plan_is_denied_with_its_findings(server: Server) -> None:
    request = review(serving_plan(sample_plan("seed-demo.yaml")), uid="e1c2-unsafe")
    answer = response(server.review(request))
    assert answer["uid"] == "e1c2-unsafe"
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 403
    message = answer["status"]["message"]
    assert "ServingPlan team-a/node-a is unsafe, 6 errors" in message
    assert "[latency-critical-priority] chat-llm: latency-critical but has no priority" in message
    assert "[bulk-capped] embeddings: bulk model uncapped beside latency-critical chat-llm, guard on gpu0" in message


def test_memory_numbers_appear_in_the_denial(server: Server) -> None:
    spec = {
        "gpus": [{"id": "gpu0", "memory_gb": 80, "sharing": "exclusive"}],
        "models": [{"name": "big", "framework": "pytorch", "gpu": "gpu0", "gpu_gb": 90}],
    }
    answer = response(server.review(review(serving_plan(spec))))
    assert answer["allowed"] is False
    assert "[memory-fit] gpu0: 90.5 GiB committed > 76.0 GiB usable" in answer["status"]["message"]


def test_safe_serving_plan_is_allowed_without_warnings(server: Server) -> None:
    answer = response(server.review(review(serving_plan(sample_plan("seed-demo-safe.yaml")), uid="safe-1")))
    assert answer == {"uid": "safe-1", "allowed": True}


def test_plan_with_only_warnings_is_allowed_with_short_warnings(server: Server) -> None:
    answer = response(server.review(review(serving_plan(NEARLY_FULL))))
    assert answer["allowed"] is True
    assert answer["warnings"] == ["[memory-headroom] gpu0: 70.5 of 80.0 GiB committed (88 % > 85 %)"]
    assert all(len(w) < 120 for w in answer["warnings"])


def test_delete_is_allowed_without_judging(server: Server) -> None:
    unsafe = serving_plan(sample_plan("seed-demo.yaml"))
    answer = response(server.review(review(None, operation="DELETE", old=unsafe, uid="del-1")))
    assert answer == {"uid": "del-1", "allowed": True}


def test_update_judges_the_new_object(server: Server) -> None:
    safe = serving_plan(sample_plan("seed-demo-safe.yaml"))
    unsafe = serving_plan(sample_plan("seed-demo.yaml"))
    made_unsafe = response(server.review(review(unsafe, operation="UPDATE", old=safe)))
    made_safe = response(server.review(review(safe, operation="UPDATE", old=unsafe)))
    assert made_unsafe["allowed"] is False
    assert made_safe["allowed"] is True


def test_dry_run_is_judged_like_a_real_request(server: Server) -> None:
    answer = response(server.review(review(serving_plan(sample_plan("seed-demo.yaml")), dry_run=True, uid="dry-1")))
    assert answer["uid"] == "dry-1"
    assert answer["allowed"] is False
    assert "6 errors" in answer["status"]["message"]


def test_labelled_configmap_holding_a_plan_is_judged(server: Server) -> None:
    data = {"plan.yaml": (SAMPLES / "seed-demo.yaml").read_text(encoding="utf-8"), "README": "not a plan"}
    unsafe = response(server.review(review(configmap(data), kind=CONFIGMAP_KIND)))
    assert unsafe["allowed"] is False
    assert "ConfigMap team-a/serving is unsafe" in unsafe["status"]["message"]
    as_json = {"plan.json": json.dumps(sample_plan("seed-demo-safe.yaml"))}
    safe = response(server.review(review(configmap(as_json), kind=CONFIGMAP_KIND)))
    assert safe["allowed"] is True


def test_labelled_configmap_with_broken_plan_is_denied_with_the_schema_error(server: Server) -> None:
    data = {"plan.yaml": "gpus: [{id: gpu0, memory_gb: 80}]\nmodels:\n  - {name: a, gpu: gpu0, gpu_gb: 10, instancs: 2}\n"}
    answer = response(server.review(review(configmap(data), kind=CONFIGMAP_KIND)))
    assert answer["allowed"] is False
    assert "[schema]" in answer["status"]["message"]
    assert "instancs" in answer["status"]["message"]


def test_configmap_without_the_label_is_allowed_untouched(server: Server) -> None:
    data = {"plan.yaml": (SAMPLES / "seed-demo.yaml").read_text(encoding="utf-8")}
    answer = response(server.review(review(configmap(data, labelled=False), kind=CONFIGMAP_KIND, uid="cm-2")))
    assert answer == {"uid": "cm-2", "allowed": True}


def test_kind_gpuadmit_does_not_judge_is_allowed(server: Server) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "team-a"}, "data": {}}
    answer = response(server.review(review(secret, kind=("", "v1", "Secret"), uid="sec-1")))
    assert answer == {"uid": "sec-1", "allowed": True}


def test_malformed_json_is_a_400_that_says_why(server: Server) -> None:
    reply = server.client().post(
        "/validate", content=b'{"apiVersion": "admission.k8s.io/v1", "kind": ', headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400
    assert reply.text.startswith("request body is not valid JSON: unexpected end of data (line 1, column")
    assert server.healthy()


def test_json_that_is_not_an_admission_review_is_a_400(server: Server) -> None:
    reply = server.client().post(
        "/validate", json={"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}
    )
    assert reply.status_code == 400
    assert "expected apiVersion admission.k8s.io/v1 kind AdmissionReview" in reply.text


def test_body_over_the_limit_is_refused_with_413(server: Server) -> None:
    padding = "x" * (3 * 1024 * 1024)
    big = review(serving_plan(sample_plan("seed-demo-safe.yaml")))
    big["request"]["object"]["metadata"]["annotations"] = {"padding": padding}
    reply = server.client().post("/validate", json=big)
    assert reply.status_code == 413
    assert "exceeds the 3145728-byte limit" in reply.text
    assert server.healthy()


def test_review_without_uid_is_answered_and_denied(server: Server) -> None:
    request = review(serving_plan(sample_plan("seed-demo-safe.yaml")))
    del request["request"]["uid"]
    answer = response(server.review(request))
    assert answer["uid"] == ""
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 400
    assert "no request.uid" in answer["status"]["message"]


def test_server_stays_healthy_and_counts_reviews(server: Server) -> None:
    server.review(review(serving_plan(sample_plan("seed-demo.yaml"))))
    assert server.healthy() and server.ready()
    assert server.metric('gpuadmit_reviews_total{kind="ServingPlan",operation="CREATE",decision="denied"}') >= 1
    assert server.metric('gpuadmit_review_duration_seconds_bucket{le="+Inf"}') >= 1
    assert server.metric('gpuadmit_bad_requests_total{status="400"}') >= 0


def test_logs_are_json_lines_without_object_bodies(server: Server) -> None:
    server.review(review(serving_plan(sample_plan("seed-demo.yaml")), uid="log-1"))

    def logged() -> list[dict[str, Any]]:
        return [entry for entry in server.logs() if entry.get("uid") == "log-1"]

    entry = poll(logged, "the review's log line")[0]
    assert entry["decision"] == "denied"
    assert entry["findings"] == ["bulk-capped", "latency-critical-priority", "latency-critical-rate-limit"]
    assert "object" not in entry
    assert "chat-llm" not in json.dumps(entry)

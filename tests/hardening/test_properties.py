"""Property tests over every reader and the admission endpoint, sized for CI.

The invariants live in `hardening_support` (shared with `bench/fuzz.py`, which runs the
same checks at a million inputs): only `InputError` escapes a reader, the Linter never
raises, exit codes are 0/1/2, a schema-invalid plan exits 2, findings are well-formed,
and the webhook always answers with a well-formed AdmissionReview or a plain 400/413.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hardening_support as hs

pytestmark = pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")

EXAMPLES = 200
CI = settings(max_examples=EXAMPLES, deadline=None, derandomize=False)
#: Composite plan strategies draw many values per example; that is their point.
BIG = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
STYLES = st.sampled_from(["json", "yaml-block", "yaml-flow"])


@pytest.fixture(scope="module")
def rule_ids(linter) -> set[str]:  # type: ignore[no-untyped-def]
    return {rule.id for rule in linter.rules.rules} | {"schema"}


@pytest.fixture(scope="module")
def admission() -> Iterator[hs.AdmissionApp]:
    app = hs.AdmissionApp()
    yield app
    app.close()


@pytest.fixture(scope="module")
def audit_admission() -> Iterator[hs.AdmissionApp]:
    app = hs.AdmissionApp(mode="audit")
    yield app
    app.close()


# --- the YAML/JSON loader -------------------------------------------------------------------


@CI
@given(st.binary(max_size=512))
def test_random_bytes_only_raise_input_error(raw: bytes) -> None:
    hs.check_readers(raw)


@CI
@given(st.binary(max_size=64).map(lambda b: b"\xef\xbb\xbf" + b), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_bom_and_line_endings_only_raise_input_error(raw: bytes, newline: bytes) -> None:
    hs.check_readers(raw.replace(b"\n", newline))


@CI
@given(hs.yaml_ish)
def test_yaml_like_text_only_raises_input_error(text: str) -> None:
    hs.check_readers(text)


@CI
@given(hs.json_values(), STYLES)
def test_json_and_yaml_documents_only_raise_input_error(value: Any, style: str) -> None:
    hs.check_readers(hs.dumps(value, style), "doc.json" if style == "json" else "doc.yaml")


# --- plans through the readers and the Linter -------------------------------------------------


@BIG
@given(hs.plans(), STYLES)
def test_near_valid_plans_keep_every_invariant(linter, rule_ids: set[str], plan: dict[str, Any], style: str) -> None:  # type: ignore[no-untyped-def]
    hs.check_plan_document(linter, rule_ids, plan, style)


@st.composite
def valid_plans(draw: st.DrawFn) -> dict[str, Any]:
    """Plans that satisfy the schema, so the rules (not the reader) have the last word."""
    gpus = [
        {
            "id": f"gpu{n}",
            "memory_gb": draw(st.integers(8, 192)),
            "sharing": draw(st.sampled_from(["exclusive", "time-slicing", "mps"])),
        }
        for n in range(draw(st.integers(1, 3)))
    ]
    models = []
    for n in range(draw(st.integers(0, 6))):
        m: dict[str, Any] = {
            "name": f"m{n}",
            "gpu": draw(st.sampled_from([g["id"] for g in gpus] + ["gpu9"])),
            "gpu_gb": draw(st.integers(0, 100)),
            "framework": draw(st.sampled_from(["pytorch", "vllm", "onnxruntime", "tensorrt_llm"])),
        }
        if draw(st.booleans()):
            m["latency_critical"] = True
            m["sla_ms"] = draw(st.integers(1, 1000))
        if draw(st.booleans()):
            m["priority"] = draw(st.integers(1, 5))
        if draw(st.booleans()):
            m["rate_limit"] = {
                "max_concurrency": draw(st.integers(1, 32)),
                "max_queue": draw(st.integers(0, 64)),
                "queue_timeout_ms": draw(st.integers(1, 500)),
            }
        if draw(st.booleans()):
            m["caps"] = {"max_batch_size": draw(st.integers(1, 64))}
        if m["framework"] in ("vllm", "tensorrt_llm") and draw(st.booleans()):
            m["memory_fraction"] = draw(st.floats(0.05, 0.95))
        if m["framework"] == "onnxruntime" and draw(st.booleans()):
            m["memory_limit_gb"] = draw(st.integers(1, 40))
        models.append(m)
    return {
        "apiVersion": "gpuadmit.dev/v1alpha1",
        "kind": "ServingPlan",
        "metadata": {"name": "p"},
        "gpus": gpus,
        "models": models,
    }


@BIG
@given(valid_plans(), STYLES)
def test_valid_plans_yield_well_formed_findings(linter, rule_ids: set[str], plan: dict[str, Any], style: str) -> None:  # type: ignore[no-untyped-def]
    assert not hs.schema_invalid(plan)
    code = hs.check_plan_document(linter, rule_ids, plan, style)
    assert code in (0, 1)  # readable plans are judged, never "unusable"


@BIG
@given(hs.plans())
def test_schema_invalid_plans_always_exit_2(linter, rule_ids: set[str], plan: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    code = hs.check_plan_document(linter, rule_ids, plan, "json")
    if hs.schema_invalid(plan):
        assert code == 2


# --- Kubernetes objects -----------------------------------------------------------------------


@BIG
@given(st.lists(hs.kubernetes_objects(), min_size=1, max_size=3), st.sampled_from(["yaml-block", "json"]))
def test_kubernetes_objects_keep_every_invariant(linter, rule_ids: set[str], objects: list[dict[str, Any]], style: str) -> None:  # type: ignore[no-untyped-def]
    if style == "json":
        body = hs.dumps(objects[0], "json")
    else:
        import yaml

        body = yaml.safe_dump_all(objects, allow_unicode=True)
    sources = hs.check_readers(body, "objects.json" if style == "json" else "objects.yaml")  # only InputError may escape
    if sources:
        hs.check_report(linter.lint_sources(sources), rule_ids)


# --- Triton model repositories ----------------------------------------------------------------


def _triton_is_a_stub() -> bool:
    from policy.readers import triton

    with tempfile.TemporaryDirectory() as folder:
        model = Path(folder) / "m"
        model.mkdir()
        (model / "config.pbtxt").write_text('name: "m"\nbackend: "onnxruntime"\n')
        return triton.read(Path(folder)) == []


@pytest.fixture(scope="module")
def triton_reader() -> None:
    if _triton_is_a_stub():
        pytest.skip("the Triton reader is still a stub")


@BIG
@given(hs.pbtxt_texts())
def test_random_pbtxt_only_raises_input_error(triton_reader: None, text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        hs.check_triton(text, Path(folder))


@CI
@given(st.binary(max_size=256))
def test_random_pbtxt_bytes_only_raise_input_error(triton_reader: None, raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        hs.check_triton(raw, Path(folder))


@CI
@given(hs.pbtxt_texts(), hs.json_values(6))
def test_vllm_model_json_only_raises_input_error(triton_reader: None, text: str, engine: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        hs.check_triton('backend: "vllm"\n' + text, Path(folder), {"1/model.json": json.dumps(engine)})


@BIG
@given(hs.pbtxt_texts(), hs.triton_overlays())
def test_repository_with_an_overlay_plan_only_raises_input_error(triton_reader: None, text: str, overlay: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        hs.check_triton('name: "m"\n' + text, Path(folder), overlay=overlay)


# --- the admission endpoint -------------------------------------------------------------------


@CI
@given(st.binary(max_size=512))
def test_random_bodies_get_a_plain_http_error(admission: hs.AdmissionApp, raw: bytes) -> None:
    hs.check_admission(admission, raw)


@CI
@given(hs.json_values())
def test_random_json_bodies_get_a_review_or_a_plain_http_error(admission: hs.AdmissionApp, value: Any) -> None:
    hs.check_admission(admission, json.dumps(value, allow_nan=True).encode())


@CI
@given(hs.json_values(8), st.sampled_from(["request", "uid", "object", "apiVersion", "kind", None]))
def test_reviews_with_parts_missing_or_wrong(admission: hs.AdmissionApp, junk: Any, broken: str | None) -> None:
    review = hs.admission_review({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}})
    if broken in ("request", "apiVersion", "kind"):
        review[broken] = junk
    elif broken is not None:
        review["request"][broken] = junk
    request = review["request"]
    uid = request.get("uid") if isinstance(request, dict) else None
    hs.check_admission(admission, json.dumps(review, allow_nan=True).encode(), uid=uid)


@BIG
@given(hs.plans())
def test_schema_invalid_serving_plans_are_never_allowed_in_enforce_mode(admission: hs.AdmissionApp, plan: dict[str, Any]) -> None:
    obj = (
        plan
        if plan.get("kind") == "ServingPlan" and "spec" in plan
        else {
            "apiVersion": "gpuadmit.dev/v1alpha1",
            "kind": "ServingPlan",
            "metadata": {"name": "p", "namespace": "ai"},
            "spec": {k: v for k, v in plan.items() if k not in ("apiVersion", "kind")},
        }
    )
    body = json.dumps(hs.admission_review(obj, uid="plan-1", kind=("gpuadmit.dev", "v1alpha1", "ServingPlan")), allow_nan=True)
    invalid = hs.schema_invalid(obj) or not hs.json_safe(obj)
    hs.check_admission(admission, body.encode(), uid="plan-1", schema_invalid=invalid)


@BIG
@given(hs.kubernetes_objects(), st.sampled_from(["CREATE", "UPDATE", "DELETE", "CONNECT", "x"]))
def test_kubernetes_objects_get_a_well_formed_review(admission: hs.AdmissionApp, obj: dict[str, Any], operation: str) -> None:
    body = json.dumps(hs.admission_review(obj, uid="k-1", operation=operation), allow_nan=True).encode()
    hs.check_admission(admission, body, uid="k-1")


@BIG
@given(hs.plans())
def test_audit_mode_always_allows_with_short_warnings(audit_admission: hs.AdmissionApp, plan: dict[str, Any]) -> None:
    obj = {
        "apiVersion": "gpuadmit.dev/v1alpha1",
        "kind": "ServingPlan",
        "metadata": {"name": "p"},
        "spec": plan.get("spec", plan) if isinstance(plan.get("spec", plan), dict) else {},
    }
    body = json.dumps(hs.admission_review(obj, uid="a-1", kind=("gpuadmit.dev", "v1alpha1", "ServingPlan")), allow_nan=True)
    response = hs.check_admission(audit_admission, body.encode(), uid="a-1")
    if response is None:  # a 400: only for what the API server never sends
        assert not (hs.json_safe(obj) and hs.numbers_fit(obj))
    else:
        assert response["allowed"] is True


@CI
@given(st.integers(1, 40))
def test_a_slow_client_gets_the_same_answer(admission: hs.AdmissionApp, chunks: int) -> None:
    review = hs.admission_review(
        {
            "apiVersion": "gpuadmit.dev/v1alpha1",
            "kind": "ServingPlan",
            "metadata": {"name": "p"},
            "spec": {"GPU_GB": 80, "models": [{"name": "chat", "gpu_gb": 42, "latency_critical": True, "sla_ms": 200}]},
        },
        uid="slow-1",
        kind=("gpuadmit.dev", "v1alpha1", "ServingPlan"),
    )
    body = json.dumps(review).encode()
    whole = hs.check_admission(admission, body, uid="slow-1")
    sliced = hs.check_admission(admission, body, uid="slow-1", chunks=chunks)
    assert whole == sliced and whole is not None and whole["allowed"] is False


# --- every writer, on whatever the readers let through ---------------------------------------------


#: Any printable text the schema takes as a name: no NUL (the C++ evaluator would cut the
#: name there), no surrogates, 1 to 253 characters.
name_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)


@st.composite
def odd_name_plans(draw: st.DrawFn) -> dict[str, Any]:
    """Valid plans whose free-text fields (names, reasons) are any text the schema takes,
    so every example reaches the writers (none is refused by the reader)."""
    plan = draw(valid_plans())
    names = draw(st.lists(name_text, min_size=len(plan["models"]), max_size=len(plan["models"]), unique=True))
    for model, name in zip(plan["models"], names):
        model["name"] = name
    plan["metadata"]["name"] = draw(name_text)
    reason = draw(name_text.filter(str.strip))  # a waiver's reason must say something
    plan["waivers"] = [{"rule": "bulk-capped", "model": draw(name_text), "reason": reason, "expires": "2000-01-01"}]
    return plan


@BIG
@given(odd_name_plans())
def test_every_writer_renders_any_report(linter, rule_ids: set[str], plan: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    import xml.etree.ElementTree as ET

    from policy.writers import FORMATS, render

    assert not hs.schema_invalid(plan)
    sources = hs.check_readers(hs.dumps(plan, "json"), "plan.json")
    assert sources, "a valid plan was refused, so no writer would be checked"
    report = linter.lint_sources(sources)
    assert report.findings, "an expired waiver is always a finding: the writers have something to render"
    hs.check_report(report, rule_ids)
    for fmt in FORMATS:
        out = render(report, fmt)
        assert isinstance(out, str)
        out.encode("utf-8")  # printable to a UTF-8 stdout
        if fmt in ("json", "sarif"):
            json.loads(out)
        elif fmt == "junit":
            ET.fromstring(out)

"""What the webhook judges, by kind. It only picks documents out of the object and hands
them to the readers the CLI uses; the rules decide.

- `ServingPlan` (gpuadmit.dev): the custom resource itself.
- `ConfigMap` labelled `gpuadmit.dev/plan: "true"`: every `data` value, as YAML or JSON.
- Anything else (Deployments, Pods, InferenceServices, ...): the Kubernetes reader
  decides whether it is a GPU workload; an object it does not turn into a plan is allowed.
"""

from __future__ import annotations

from typing import Any

from policy.api import Linter, gc_paused
from policy.errors import InputError
from policy.readers import input_finding, read_documents
from policy.findings import Finding
from policy.source import PlanSource
from policy.yamlio import Document, load_documents

from .review import Answer, Review, allow, verdict, warning

PLAN_LABEL = "gpuadmit.dev/plan"
#: Operations whose object is judged; DELETE and CONNECT carry nothing to judge.
JUDGED_OPERATIONS = {"CREATE", "UPDATE"}


def judge(linter: Linter, review: Review, audit: bool) -> Answer:
    """The answer for one well-formed review (CPU-bound; may run in a worker thread)."""
    with gc_paused():
        return _judge(linter, review, audit)


def _judge(linter: Linter, review: Review, audit: bool) -> Answer:
    if review.operation not in JUDGED_OPERATIONS or review.sub_resource:
        # DELETE, CONNECT, and status/scale updates do not change what is deployed.
        return allow()
    obj = review.object
    if not isinstance(obj, dict):
        return verdict(review.subject, [_schema("the review has no object to judge")], 1, audit)
    findings: list[Finding] = []
    sources: list[PlanSource] = []
    file = _file(review)
    if review.kind == "ConfigMap" and not review.group:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if not isinstance(labels, dict) or labels.get(PLAN_LABEL) != "true":
            return allow()
        data = obj.get("data") or {}
        if not isinstance(data, dict):
            data = {}
        for key in sorted(data):
            value = data[key]
            if not isinstance(value, str) or not value.strip():
                continue
            where = f"{file}/{key}"
            try:
                sources.extend(read_documents(load_documents(value, where), where, default_name=_stem(review.name, key)))
            except InputError as error:
                error.file = error.file or where
                findings.append(input_finding(error))
        if not sources and not findings:
            return allow([warning(f"gpuadmit: ConfigMap is labelled {PLAN_LABEL}=true but no data key holds a plan")])
    else:
        try:
            sources = read_documents([Document(obj, file, 0, 1)], file, default_name=review.name or "plan")
        except InputError as error:
            error.file = error.file or file
            findings.append(input_finding(error))
        if not sources and not findings:
            return allow()
    report = linter.lint_sources(sources)
    findings.extend(report.findings)
    return verdict(review.subject, findings, len(sources), audit)


def _file(review: Review) -> str:
    """How findings name the object: kind/namespace/name."""
    parts = [review.kind.lower() or "object", review.namespace, review.name or "unnamed"]
    return "/".join(p for p in parts if p)


def _stem(name: str, key: str) -> str:
    stem = key.rsplit(".", 1)[0] if "." in key else key
    return f"{name}-{stem}" if name else stem


def _schema(message: str) -> Finding:
    return Finding(rule="schema", severity="error", message=message)


def describe(answer: Answer) -> dict[str, Any]:
    """The log fields of an answer: counts and rule ids, never object bodies."""
    return {
        "allowed": answer.allowed,
        "decision": answer.decision,
        "findings": sorted({f.rule for f in answer.findings}),
        "errors": sum(1 for f in answer.findings if f.severity == "error"),
        "warnings": sum(1 for f in answer.findings if f.severity == "warning"),
    }

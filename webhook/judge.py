"""What the webhook judges, by kind. It only picks documents out of the object and hands
them to the readers the CLI uses; the rules decide.

- `ServingPlan` (gpuadmit.dev): the custom resource itself.
- `ConfigMap` labelled `gpuadmit.dev/plan: "true"`: every `data` value, as YAML or JSON.
- Anything else (Deployments, Pods, InferenceServices, ...): the Kubernetes reader
  decides whether it is a GPU workload; an object it does not turn into a plan is allowed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from policy.api import Linter, gc_paused
from policy.cluster import ClusterView
from policy.errors import InputError
from policy.readers import TOO_DEEP, ReadResult, input_finding, read_documents
from policy.findings import Finding
from policy.source import PlanSource
from policy.verdict import Mode
from policy.yamlio import Document, load_documents

from .review import Answer, Review, allow, deny, verdict, warning
from .scale import is_scale, malformed_scale, not_in_view, scaled_review, without_view

if TYPE_CHECKING:
    from .coordination import Coordinator

PLAN_LABEL = "gpuadmit.dev/plan"
#: Operations whose object is judged; DELETE and CONNECT carry nothing to judge.
JUDGED_OPERATIONS = {"CREATE", "UPDATE"}
#: Every operation an AdmissionReview can carry (admission.k8s.io/v1 Operation).
OPERATIONS = JUDGED_OPERATIONS | {"DELETE", "CONNECT"}


class ViewBusy(Exception):
    """The cluster view is held by another review or by a refresh, and the caller may not wait."""


def judge(
    linter: Linter,
    review: Review,
    mode: Mode = "enforce",
    cluster: ClusterView | None = None,
    coordinator: Coordinator | None = None,
    due: float | None = None,
    reserve_s: float | None = None,
    *,
    wait: bool = True,
) -> Answer:
    """The answer for one well-formed review (CPU-bound; may run in a worker thread).

    Decided by `policy.verdict` with the project config's `fail_on`, as `gpuadmit lint` is.
    With `cluster`, the object is judged with its neighbours there (webhook.neighbours); with
    `coordinator` too, in step with the other replicas (webhook.coordination), which may
    raise CoordinationError (gpuadmit's own failure) and gives up at `due` (time.monotonic).
    A review still waiting for the view at `due`, or judged past it, raises TimeoutError and
    reserves nothing: the API server has answered it already and does not create the object.
    An admitted object is reserved for `reserve_s` (default: neighbours.RESERVATION_SECONDS).
    With `wait=False`, raises ViewBusy rather than wait for the cluster view's lock: the
    event loop judges inline only what it can judge at once.
    """
    with gc_paused():
        bad = malformed_scale(review)  # bad input: denied with or without a view, in every mode
        if bad is not None:
            return bad
        if cluster is None:
            if is_scale(review):
                return without_view(review)
            return _judge(linter, review, mode)
        from .neighbours import admitted, reservation_seconds

        # One review of the cluster at a time: judged and, when admitted, counted before
        # the next is judged (docs/DOMAINS.md, "No race").
        view = cluster
        if not view.lock.acquire(blocking=wait):
            raise ViewBusy
        try:
            if due is not None and time.monotonic() > due:
                # Waited for the view past the deadline: the API server has its answer already.
                raise TimeoutError("the deadline passed while the review waited for the cluster view")
            view.expire()
            if is_scale(review):
                # The scaled object, built once: judged, and reserved when admitted.
                scaled = scaled_review(review, view)
                if scaled is None:
                    return not_in_view(review)
                review = scaled

            def decide() -> Answer:
                return _judge(linter, review, mode, view)

            if coordinator is not None:
                return coordinator.judge(review, cluster, decide, due)
            answer = decide()
            if answer.allowed and not review.dry_run:
                doc = admitted(review, cluster)
                if doc is not None:
                    if due is not None and time.monotonic() > due:
                        # Answered too late: the API server gave up and the object is not
                        # created, so nothing is reserved for it.
                        raise TimeoutError("the deadline passed while the review was judged")
                    cluster.reserve(doc, reserve_s or reservation_seconds())
            return answer
        finally:
            view.lock.release()


def unreadable(linter: Linter, review: Review, mode: Mode = "enforce") -> Answer | None:
    """The verdict on an object that cannot be read (a `replicas: "4"`), judged alone as
    without a cluster view: where the view cannot be used (too stale), bad input is still
    answered as such, never by the failure policy. None when the object reads."""
    with gc_paused():
        answer = _judge(linter, review, mode)
    if any(f.rule == "schema" and f.severity == "error" for f in answer.findings):
        return answer
    return None


def malformed(review: Review) -> Answer | None:
    """A deny for a review that is not one the API server sends, whatever the mode:
    bad input is never allowed, not under `--fail-open` and not in audit mode."""
    if review.operation not in OPERATIONS:
        found = f"operation {review.operation!r}" if review.operation else "no operation"
        return deny(
            400, f"gpuadmit: malformed AdmissionReview: {found}; expected one of {', '.join(sorted(OPERATIONS))}", "error"
        )
    obj = review.object
    if review.operation in JUDGED_OPERATIONS and not review.sub_resource and (not isinstance(obj, dict) or not obj):
        return deny(
            400,
            f"gpuadmit: malformed AdmissionReview: {review.operation} of {review.subject or 'an object'} carries no object to judge",
            "error",
        )
    return None


def _terminating(review: Review) -> bool:
    """An UPDATE of an object already being deleted: finalizers coming off, nothing new deployed."""
    metadata = review.object.get("metadata") if isinstance(review.object, dict) else None
    return review.operation == "UPDATE" and isinstance(metadata, dict) and bool(metadata.get("deletionTimestamp"))


def _judge(linter: Linter, review: Review, mode: Mode, cluster: ClusterView | None = None) -> Answer:
    bad = malformed(review)
    if bad is not None:
        return bad
    if review.operation not in JUDGED_OPERATIONS or review.sub_resource:
        # DELETE, CONNECT, and status/scale updates do not change what is deployed.
        return allow()
    if _terminating(review):
        # Denying it would keep the object stuck in deletion, unsafe or not.
        return allow([warning(f"gpuadmit: {review.subject} is being deleted; not judged")])
    obj = review.object
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
                docs = load_documents(value, where)
                # files=None: a verdict never depends on the webhook's own disk.
                sources.extend(read_documents(docs, where, default_name=_stem(review.name, key), files=None))
            except InputError as error:
                error.file = error.file or where
                findings.append(input_finding(error))
            except RecursionError:  # bad input, never an internal error that --fail-open would allow
                findings.append(input_finding(InputError(TOO_DEEP, file=where)))
        if not sources and not findings:
            return allow([warning(f"gpuadmit: ConfigMap is labelled {PLAN_LABEL}=true but no data key holds a plan")])
    else:
        if cluster is not None:
            from .neighbours import counted_elsewhere

            counted = counted_elsewhere(review, cluster)
            if counted is not None:
                return counted
        try:
            if cluster is not None:
                from .neighbours import read_with_cluster

                sources, grouped = read_with_cluster(review, obj, file, cluster)
                findings.extend(grouped)
            else:
                sources = read_documents([Document(obj, file, 0, 1)], file, default_name=review.name or "plan", files=None)
        except InputError as error:
            error.file = error.file or file
            findings.append(input_finding(error))
        except RecursionError:  # bad input, never an internal error that --fail-open would allow
            findings.append(input_finding(InputError(TOO_DEEP, file=file)))
        if not sources and not findings:
            return allow()
    # The reading findings go through the linter too: the rule configuration applies to them.
    report = linter.lint_sources(sources, ReadResult(findings=findings))
    return verdict(review.subject, report.findings, len(sources), mode=mode, fail_on=linter.config.fail_on)


def _file(review: Review) -> str:
    """How findings name the object: kind/namespace/name."""
    parts = [review.kind.lower() or "object", review.namespace, review.name or "unnamed"]
    return "/".join(p for p in parts if p)


def _stem(name: str, key: str) -> str:
    stem = key.rsplit(".", 1)[0] if "." in key else key
    return f"{name}-{stem}" if name else stem


def describe(answer: Answer) -> dict[str, Any]:
    """The log fields of an answer: counts and rule ids, never object bodies."""
    return {
        "allowed": answer.allowed,
        "decision": answer.decision,
        "findings": sorted({f.rule for f in answer.findings}),
        "errors": sum(1 for f in answer.findings if f.severity == "error"),
        "warnings": sum(1 for f in answer.findings if f.severity == "warning"),
    }

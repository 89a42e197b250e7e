"""Scale subresource reviews (`kubectl scale`, HorizontalPodAutoscalers): an UPDATE of
`<resource>/scale` whose object is an `autoscaling/v1` Scale, judged as the cluster's own
object with the requested `spec.replicas` (policy.cluster.snapshot.SCALABLE says which).

The scaled object is built once per review, under the cluster view's lock, and that one
review is both judged and, when admitted, reserved (webhook.judge, webhook.neighbours).
A Scale without `spec.replicas` asks for 0: in autoscaling/v1 `ScaleSpec.replicas` is an
`int32` with `json:"replicas,omitempty"` (k8s.io/api `autoscaling/v1/types.go`), so the API
server leaves a count of 0 out of the Scale it sends (`kubectl scale --replicas=0`, KEDA
scaling to zero send `spec: {}`, or no `spec`); a `null` decodes to 0 as well. A Scale whose
`spec.replicas` is present and not a non-negative integer (a string, a negative number, a
bool, a float), or whose `spec` is not an object, is not one the API server sends (it decodes
the Scale as int32 before admission): it is bad input, denied with 400 in every mode,
`--fail-open` and audit included, like any malformed review.
"""

from __future__ import annotations

import copy
from typing import Any

from policy.cluster import ClusterView

from .review import Answer, Review, allow, deny, warning


def is_scale(review: Review) -> bool:
    return review.sub_resource == "scale" and review.operation == "UPDATE"


#: What a review that carries no Scale, or a `spec` that is not an object, holds instead of a count.
_MALFORMED_SPEC = object()


def requested_replicas(review: Review) -> Any:
    """The Scale's `spec.replicas`, as sent; 0 when left out (omitempty: the count is 0)."""
    scale = review.object
    if not isinstance(scale, dict) or not scale:
        return _MALFORMED_SPEC
    spec = scale.get("spec")
    if spec is None:
        return 0
    if not isinstance(spec, dict):
        return _MALFORMED_SPEC
    value = spec.get("replicas")
    return 0 if value is None else value


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def where(review: Review) -> str:
    """`deployments/scale of prod/chat-llm`: what the request scales."""
    place = f"{review.namespace}/{review.name}" if review.namespace else review.name
    return f"{review.resource or 'an object'}/scale of {place or 'an unnamed object'}"


def malformed_scale(review: Review) -> Answer | None:
    """A 400 deny for a scale UPDATE without a usable replica count; None otherwise."""
    if not is_scale(review):
        return None
    value = requested_replicas(review)
    if _count(value) is not None:
        return None
    spec = review.object.get("spec") if isinstance(review.object, dict) else None
    if value is not _MALFORMED_SPEC:
        found = f"spec.replicas {value!r}"
    elif isinstance(review.object, dict) and review.object:
        found = f"spec {spec!r}"
    else:
        found = "no Scale"
    return deny(
        400,
        f"gpuadmit: malformed AdmissionReview: {where(review)} carries {found}; expected a non-negative integer",
        "error",
    )


def scaled_review(review: Review, cluster: ClusterView) -> Review | None:
    """The review of the cluster's object behind a well-formed scale request, with the
    requested replicas: an UPDATE of that object, marked `scale_of`. None when the view
    does not hold the object (or the resource is not one gpuadmit scales)."""
    replicas = _count(requested_replicas(review))
    if replicas is None:
        return None
    found = cluster.find_scalable(review.resource_group, review.resource, review.namespace, review.name)
    if found is None or not isinstance(found.data, dict):
        return None
    data = copy.deepcopy(found.data)
    spec = data.setdefault("spec", {})
    if isinstance(spec, dict):
        spec["replicas"] = replicas
    api_version = str(data.get("apiVersion") or "")
    return Review(
        uid=review.uid,
        kind=str(data.get("kind") or review.kind),
        group=api_version.partition("/")[0] if "/" in api_version else "",
        operation="UPDATE",
        namespace=review.namespace,
        name=review.name,
        dry_run=review.dry_run,
        sub_resource="",
        object=data,
        timeout_s=review.timeout_s,
        resource=review.resource,
        resource_group=review.resource_group,
        scale_of=review.resource,
    )


def not_in_view(review: Review) -> Answer:
    """A scale of an object the cluster view does not hold: allowed, and said."""
    return allow([warning(f"gpuadmit: {where(review)} is not in the cluster view; not judged")])


def without_view(review: Review) -> Answer:
    """A scale with no cluster view at all (`serve` without `--cluster`): allowed, and said."""
    return allow([warning(f"gpuadmit: replicas of {review.subject} not judged: no cluster view (serve --cluster)")])

"""Judging an admitted object with what the cluster already runs in its sharing domains.

With `gpuadmit serve --cluster FILE`, each reviewed object joins the domains it shares with
the snapshot's workloads (policy.domains): CREATE adds it, UPDATE replaces the cluster's
version of it (same kind, namespace and name), and a `<resource>/scale` request is judged
as the cluster's object with the new replica count (webhook.scale).
"""

from __future__ import annotations

import copy
from typing import Any

from policy.cluster import ClusterView
from policy.cluster.owners import described
from policy.domains import Batch, group_with_plans, plan_key
from policy.findings import Finding
from policy.readers import read_documents
from policy.source import PlanSource
from policy.yamlio import Document

from .review import Answer, Review, allow, warning


def counted_elsewhere(review: Review, cluster: ClusterView) -> Answer | None:
    """An allow, with a warning naming it, for an object that a controller the view really
    holds counts (a Deployment's ReplicaSet: policy.cluster.owners.controller_in). That
    controller was judged with every replica; judging the object beside it would count them
    twice and deny the controller's own ReplicaSet at every rollout. None for any other
    object, a reference naming a controller the view does not hold (same namespace, kind,
    name and uid) included: it is judged like any object."""
    obj = review.object
    if not isinstance(obj, dict):
        return None
    counting = cluster.counted_through(obj, review.namespace)
    if counting is None:
        return None
    return allow([warning(f"gpuadmit: counted as part of {described(counting)}, judged when it was admitted")])


def read_with_cluster(
    review: Review, obj: dict[str, Any], file: str, cluster: ClusterView
) -> tuple[list[PlanSource], list[Finding]]:
    """The plans of the domains `obj` joins, its neighbours from `cluster` included (an
    object its controller counts was answered before: `counted_elsewhere`)."""
    doc = Document(_namespaced(obj, review.namespace), file, 0, 1)
    objects: list[Document] = []
    plans = read_documents([doc], file, default_name=review.name or "plan", objects=objects)
    if not objects:
        return _with_bound_workloads(plans, cluster)
    if len(objects) == 1:  # the common case: one workload beside its domain's kept neighbours
        beside = cluster.beside(objects[0], review.name or "plan")
        if beside is not None:
            return [*plans, beside], []
    given = Batch(file, objects, review.name or "plan", order=1)
    merged, grouped = group_with_plans([cluster.neighbours(objects), given], plans)
    return [*merged, *grouped.sources], grouped.findings


def _with_bound_workloads(plans: list[PlanSource], cluster: ClusterView) -> tuple[list[PlanSource], list[Finding]]:
    """ServingPlans judged with the cluster's workloads bound to them (`gpuadmit.dev/plan`):
    the new version of a plan must still hold what runs on it."""
    bound = [
        doc
        for source in plans
        for doc in cluster.plan_members(plan_key(source))
        if isinstance(doc.data, dict) and doc.data.get("kind") != "ServingPlan"
    ]
    if not bound:
        return plans, []
    context = cluster.neighbours([])
    batch = Batch(context.file, [*context.docs, *bound], "cluster", together=False, judged=False, replaceable=True)
    merged, grouped = group_with_plans([batch], plans)
    return [*merged, *grouped.sources], grouped.findings


#: How long an admitted object counts before the snapshot must show it: a snapshot exported
#: more often than this keeps every admitted workload counted.
RESERVATION_SECONDS = 600.0


def reservation_seconds() -> float:
    return RESERVATION_SECONDS


def admitted(review: Review, cluster: ClusterView) -> Document | None:
    """What an allowed CREATE, UPDATE or scale (the review of the scaled object,
    webhook.scale.scaled_review) adds to the cluster: its GPU workload, or None."""
    from policy.readers import kubernetes

    if review.operation not in ("CREATE", "UPDATE"):
        return None
    obj = review.object
    # A scale request is admitted as the review webhook.scale built of the scaled object.
    if review.sub_resource or not isinstance(obj, dict) or not kubernetes.is_object(obj):
        return None
    if cluster.counted_through(obj, review.namespace) is not None:
        return None  # counted through its controller, never beside it
    data = _namespaced(obj, review.namespace)
    meta = data.get("metadata")
    if review.scale_of and isinstance(meta, dict):
        # The API server counts the new replicas as a spec change: the object it stores is
        # one generation on from the cluster's version copied here, and only a listing at
        # that generation shows the scale applied.
        generation = meta.get("generation")
        if isinstance(generation, int) and not isinstance(generation, bool):
            data = {**data, "metadata": {**meta, "generation": generation + 1}}
            meta = data["metadata"]
    if not (isinstance(meta, dict) and meta.get("name")):
        # Named by the review, or not yet (a CREATE with generateName): a reservation must not
        # share the identity of another unnamed object, or one would replace the other.
        name = review.name or f"(unnamed {review.uid})"
        data = {**data, "metadata": {**(meta if isinstance(meta, dict) else {}), "name": name}}
    doc = Document(data, f"admitted/{review.uid}", 0, 1)
    return doc if kubernetes.placements([doc])[0].gpu else None


def _namespaced(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The object with the review's namespace in its metadata (a CREATE may leave it out)."""
    meta = obj.get("metadata")
    if not namespace or (isinstance(meta, dict) and meta.get("namespace")):
        return obj
    copied = copy.copy(obj)
    copied["metadata"] = {**(meta if isinstance(meta, dict) else {}), "namespace": namespace}
    return copied

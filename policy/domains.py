"""Sharing domains: what can land on the same physical GPUs is judged together.

A domain is the unit of judgement (docs/DOMAINS.md). Readers turn files into documents;
this module groups every Kubernetes object read in one run — from every file, standard
input and a cluster snapshot — into domains before a plan is built:

- the objects of one input file stay together (as they were written, one plan);
- objects that share a GPU pool (same product and sharing mode, or the same
  `gpuadmit.dev/gpu-pool`) join one domain, whatever file or cluster they come from;
- a workload annotated `gpuadmit.dev/plan: NAME` joins the ServingPlan of that name in its
  own namespace (no namespace is `default`; ServingPlans are namespaced): its
  model is placed on every GPU of the plan (the scheduler may put it on any of them, and
  each must fit), all its replicas on each;
- PriorityClasses and device-plugin time-slicing ConfigMaps are cluster-wide: they inform
  every domain.

A ServingPlan is its own domain, and so is a Triton repository (one server's models).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from .errors import InputError
from .plan import Model
from .findings import Finding
from .source import PlanSource, Position
from .yamlio import Document

if TYPE_CHECKING:
    from .readers.files import Files

#: Kinds whose objects say something about every workload's domain.
CONTEXT_KINDS = {"PriorityClass", "ConfigMap", "Node"}
BINDING = "gpuadmit.dev/plan"


@dataclass
class Batch:
    """Objects read from one place."""

    file: str
    docs: list[Document]
    #: The plan name when the batch is judged alone (the file's stem).
    name: str
    #: A file's objects are one plan, as written; a cluster's objects join only by domain.
    together: bool = True
    #: Only domains that an object of some batch with `judged` joins are judged; a
    #: cluster's objects are neighbours, not subjects, unless the whole cluster is audited.
    judged: bool = True
    #: The input order, so plans are reported in the order their files were given.
    order: int = 0
    #: A cluster's objects: one given for judging with the same kind, namespace and name
    #: is its next version and takes its place.
    replaceable: bool = False


@dataclass
class Grouped:
    """Plans built from a run's objects, with the findings made while building them."""

    sources: list[PlanSource] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    #: Each source's input order (index into `sources`), for stable reporting.
    order: list[int] = field(default_factory=list)


def group(
    batches: Sequence[Batch], plans: Sequence[PlanSource] = (), *, files: Files | None = None
) -> tuple[list[PlanSource], Grouped]:
    """Plans for the objects of `batches`, grouped by domain.

    Returns `plans` with bound workloads merged into them, and the plans of the domains.
    `files`: whether model repositories the workloads name may be read (policy.readers.files).
    """
    from .readers import kubernetes

    # A saved AdmissionReview is the object it carries, in the request's namespace, as the
    # webhook reads it: its identity, name and replicas are the object's.
    batches = [
        dataclasses.replace(batch, docs=[kubernetes.unwrap_review(doc) for doc in batch.docs]) if not batch.replaceable else batch
        for batch in batches
    ]
    given = {identity(doc) for batch in batches if not batch.replaceable for doc in batch.docs}
    entries = [
        (b, batch, doc)
        for b, batch in enumerate(batches)
        for doc in batch.docs
        if not (batch.replaceable and identity(doc) in given)
    ]
    if not entries:
        return list(plans), Grouped()
    placements = kubernetes.placements([doc for _, _, doc in entries])
    context = [doc for (_, _, doc), p in zip(entries, placements) if not p.gpu and _kind(doc) in CONTEXT_KINDS]
    by_plan = {plan_key(source): source for source in plans}
    grouped = Grouped()

    bound: dict[str, list[Document]] = {}
    parent = list(range(len(entries)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    pool_member: dict[str, int] = {}
    batch_member: dict[int, int] = {}
    gpu_entries: list[int] = []
    for i, ((b, batch, doc), placement) in enumerate(zip(entries, placements)):
        if not placement.gpu:
            continue
        if placement.plan is not None:
            if placement.plan in by_plan:
                bound.setdefault(placement.plan, []).append(doc)
                continue
            grouped.findings.append(_unbound(doc, placement.plan))
        gpu_entries.append(i)
        for pool in placement.pools:
            if pool in pool_member:
                union(i, pool_member[pool])
            else:
                pool_member[pool] = i
        if batch.together:
            if b in batch_member:
                union(i, batch_member[b])
            else:
                batch_member[b] = i

    components: dict[int, list[int]] = {}
    for i in gpu_entries:
        components.setdefault(find(i), []).append(i)
    for members in components.values():
        if not any(entries[i][1].judged for i in members):
            continue
        # The judged objects first: a domain's GPUs are then positioned at the given file.
        members.sort(key=lambda i: (not entries[i][1].judged, entries[i][1].order, i))
        docs = [entries[i][2] for i in members]
        batches_in = {entries[i][0] for i in members}
        lead = min(members, key=lambda i: (not entries[i][1].judged, entries[i][1].order))
        _, lead_batch, lead_doc = entries[lead]
        if len(batches_in) == 1 and lead_batch.together:
            name = lead_batch.name
        else:
            name = _domain_name(members, placements, entries)
        member_ids = {id(d) for d in docs}
        extra = [d for d in context if id(d) not in member_ids]
        try:
            built = kubernetes.read_objects([*extra, *docs], lead_doc.file, default_name=name, files=files)
        except InputError as error:
            if error.file is None:
                error.file = lead_doc.file
            from .readers import input_finding

            grouped.findings.append(input_finding(error))
            continue
        for source in built:
            grouped.sources.append(source)
            grouped.order.append(min(entries[i][1].order for i in members if entries[i][1].judged))

    merged = [_bind(source, bound.get(plan_key(source), []), context, grouped, files) for source in plans]
    return merged, grouped


def group_with_plans(
    batches: Sequence[Batch], plans: Sequence[PlanSource] = (), *, files: Files | None = None
) -> tuple[list[PlanSource], Grouped]:
    """`group`, with the ServingPlans among a cluster's objects as the plans its workloads
    and the given ones bind to (`gpuadmit.dev/plan`).

    A given plan with the name of a cluster plan is its next version and takes its place.
    Of the cluster's plans, those a judged object binds to come back among the grouped
    sources (with the workloads bound to them); when the cluster itself is judged (an
    audit), all of them do."""
    extra = cluster_plans(batches, plans)
    if not extra:
        return group(batches, plans, files=files)
    merged, grouped = group(batches, [*plans, *extra], files=files)
    wanted = _bound_by_judged(batches)
    for source in merged[len(plans) :]:
        order = wanted.get(plan_key(source), wanted.get("", None))
        if order is not None:
            grouped.sources.append(source)
            grouped.order.append(order)
    return merged[: len(plans)], grouped


def cluster_plans(batches: Sequence[Batch], given: Sequence[PlanSource] = ()) -> list[PlanSource]:
    """The ServingPlans among a cluster's objects (replaceable batches), read as plans; a
    plan that cannot be read is left out (a workload bound to it is then reported unbound)."""
    from .readers import native

    keys = {plan_key(source) for source in given}
    found: list[PlanSource] = []
    for batch in batches:
        if not batch.replaceable:
            continue
        for doc in batch.docs:
            if _kind(doc) != "ServingPlan" or _doc_plan_key(doc) in keys:
                continue
            try:
                found.append(native.read_plan_document(doc, default_name=_name(doc) or "plan"))
            except InputError:
                continue
            keys.add(_doc_plan_key(doc))
    return found


def _bound_by_judged(batches: Sequence[Batch]) -> dict[str, int]:
    """Plan name -> the input order of the first judged batch whose object binds to it;
    `""` -> the order of a judged cluster batch (every cluster plan is wanted)."""
    from .readers import kubernetes

    wanted: dict[str, int] = {}
    for batch in batches:
        if not batch.judged:
            continue
        if batch.replaceable:
            wanted.setdefault("", batch.order)
        for placement in kubernetes.placements(batch.docs) if batch.docs else []:
            if placement.plan is not None:
                wanted.setdefault(placement.plan, batch.order)
    return wanted


def plan_key(source: PlanSource) -> str:
    """The ServingPlan as bindings name it (`readers.kubernetes.binding_key`): namespace and name."""
    from .readers.kubernetes import binding_key

    metadata = source.plan.metadata
    namespace = (metadata.model_extra or {}).get("namespace")
    return binding_key(str(namespace) if namespace else None, metadata.name)


def _doc_plan_key(doc: Document) -> str:
    _, namespace, name = identity(doc)
    return f"{namespace}/{name}"


def identity(doc: Document) -> tuple[str, str, str]:
    """(kind, namespace, name): what makes two objects versions of one. No namespace is `default`,
    where `kubectl apply` puts an object that names none."""
    data = doc.data
    meta = data.get("metadata") if isinstance(data, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    return (_kind(doc), str(meta.get("namespace") or "default"), str(meta.get("name") or ""))


def _kind(doc: Document) -> str:
    data = doc.data
    return str(data.get("kind")) if isinstance(data, dict) else ""


def _domain_name(members: list[int], placements: list[Any], entries: list[Any]) -> str:
    """A shared domain is named after its pool; a lone workload after itself."""
    for i in members:
        if placements[i].pools:
            return str(placements[i].pools[0])
    data = entries[members[0]][2].data
    meta = data.get("metadata") if isinstance(data, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return str(name or entries[members[0]][1].name)


def _unbound(doc: Document, key: str) -> Finding:
    namespace, _, plan = key.partition("/")
    return Finding(
        rule="schema",
        severity="warning",
        message=(
            f"{BINDING}: {plan!r} names a ServingPlan that is not in this input in namespace {namespace!r}; "
            "judged without the plan's other models"
        ),
        file=doc.file,
        line=doc.line,
        fix=f"lint the ServingPlan {plan!r} of namespace {namespace!r} together with this workload (or with --cluster)",
    )


def _bind(source: PlanSource, docs: list[Document], context: list[Document], grouped: Grouped, files: Files | None) -> PlanSource:
    """`source` with the workloads bound to it placed on its GPUs."""
    if not docs:
        return source
    from .readers import input_finding, kubernetes

    plan = source.plan
    targets = [gpu.id for gpu in plan.gpus if gpu.sharing != "mig"]
    if not targets:
        grouped.findings.append(
            Finding(
                rule="schema",
                severity="warning",
                message=f"{BINDING}: ServingPlan {plan.metadata.name!r} has no whole GPU to place bound workloads on; judged without them",
                file=docs[0].file,
                line=docs[0].line,
            )
        )
        return source
    try:
        built = kubernetes.read_objects([*context, *docs], docs[0].file, default_name=plan.metadata.name, files=files)
    except InputError as error:
        if error.file is None:
            error.file = docs[0].file
        grouped.findings.append(input_finding(error))
        return source
    taken = {m.name for m in plan.models}
    models = list(plan.models)
    positions: dict[tuple[Any, ...], Position] = dict(source.positions)
    findings = list(source.findings)
    dialects = dict(source.dialects)  # fix hints for bound workloads speak Kubernetes
    replicas = {_name(doc): _replicas(doc) for doc in docs}
    waivers = list(plan.waivers)
    for part in built:
        renamed: dict[str, str] = {}
        for model in part.plan.models:
            name = model.name
            while name in taken:
                name = f"{name}-bound"
            taken.add(name)
            renamed[model.name] = name
            instances = max(model.instances, replicas.get(model.name.split("/")[0], 1))
            placed: dict[str, Any] = {"name": name, "instances": instances, "gpu": None, "gpus": None}
            placed["gpu" if len(targets) == 1 else "gpus"] = targets[0] if len(targets) == 1 else list(targets)
            models.append(Model.model_validate({**model.model_dump(exclude_none=True), **placed}))
            dialects[("model", name)] = part.dialect_of("model", model.name)
            for key, pos in part.positions.items():
                if key[0] == "model" and key[1] == model.name:
                    positions[("model", name, *key[2:])] = pos if len(pos) > 2 else (pos[0], pos[1], part.file or "")
        findings.extend(part.findings)
        # A bound workload's waivers (its `gpuadmit.dev/waive`) waive its own models, under
        # the names they take in the plan: never the plan's model whose name it shares.
        waivers.extend(
            w.model_copy(update={"model": renamed[w.model]})
            for w in part.plan.waivers
            if w.model is not None and w.model in renamed
        )
    merged = plan.model_copy(update={"models": models, "waivers": waivers})
    return PlanSource(
        plan=merged,
        file=source.file,
        line=source.line,
        positions=positions,
        findings=findings,
        dialect=source.dialect,
        dialects=dialects,
    )


def _name(doc: Document) -> str:
    meta = doc.data.get("metadata") if isinstance(doc.data, dict) else None
    return str(meta.get("name")) if isinstance(meta, dict) else ""


def _replicas(doc: Document) -> int:
    """Replicas that may all land on one of the plan's GPUs."""
    spec = doc.data.get("spec") if isinstance(doc.data, dict) else None
    value = spec.get("replicas") if isinstance(spec, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1

"""A cluster snapshot file to the objects gpuadmit judges beside the given ones.

- `List` documents (`kubectl get ... -o yaml|json`) are unwrapped into their items.
- Objects whose controller the view holds (same namespace, kind, name and uid) and reads
  and counts with all its replicas (a Deployment's ReplicaSets and Pods, a Job's Pods, ...)
  are left out: their controller is counted. What a controller of another kind owns (a
  PyTorchJob's Pods, ...), or one the view does not hold, is counted from its own spec
  (policy.cluster.owners).
- An object given for judging replaces the cluster's object of the same kind, namespace and
  name: it is that object's next version (an UPDATE, a `kubectl apply` of a change).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..domains import Batch, identity
from ..errors import InputError
from ..source import PlanSource, Position
from ..yamlio import Document, LineList, load_documents, read_text
from .owners import controller_in, left_out

#: Kinds a snapshot contributes: GPU nodes, cluster-wide settings and workloads.
KINDS = {
    "Node",
    "PriorityClass",
    "ConfigMap",
    "Deployment",
    "StatefulSet",
    "ReplicaSet",
    "DaemonSet",
    "Pod",
    "Job",
    "CronJob",
    "InferenceService",
    "LLMInferenceService",
    "LeaderWorkerSet",
    "ServingPlan",
    "RayService",
    "RayCluster",
    "NIMService",
    "VLLMRuntime",
}
#: Kinds whose `scale` subresource gpuadmit judges, by (API group, resource): each keeps
#: its replica count in `spec.replicas` (LeaderWorkerSet: groups, its CRD's
#: `subresource:scale:specpath=.spec.replicas`). samples/deploy/07-webhook.yaml registers
#: `<resource>/scale` for exactly these (tests/cluster/test_registration.py).
SCALABLE = {
    ("apps", "deployments"): "Deployment",
    ("apps", "statefulsets"): "StatefulSet",
    ("apps", "replicasets"): "ReplicaSet",
    ("leaderworkerset.x-k8s.io", "leaderworkersets"): "LeaderWorkerSet",
}


@dataclass
class ClusterView:
    """The objects of one snapshot, by identity."""

    source: str
    objects: list[Document] = field(default_factory=list)
    by_identity: dict[tuple[str, str, str], Document] = field(default_factory=dict)
    #: Objects left out because a controller the view holds counts them (policy.cluster.owners),
    #: by identity: a controller of what is reviewed may be one of them (a leader Pod, a
    #: Deployment's ReplicaSet).
    owned: dict[tuple[str, str, str], Document] = field(default_factory=dict)

    #: Built on first use: the cluster-wide objects (nodes, priority classes, device-plugin
    #: configs), and each pool's domain (cluster objects joined through shared pools).
    _context: list[Document] | None = None
    _domain_of_pool: dict[str, int] = field(default_factory=dict)
    _domains: dict[int, list[Document]] = field(default_factory=dict)
    #: Each domain's neighbours read once: (plan, model names by object identity), or None
    #: where only a full grouping can say (priority classes rank across the domain).
    _plans: dict[int, tuple[PlanSource, dict[tuple[str, str, str], list[str]]] | None] = field(default_factory=dict)

    #: Judging and reserving one domain happen under this lock, so two concurrent reviews
    #: cannot both take the room that only one of them fits in.
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: The ServingPlans and the workloads bound to each, by plan name, for one object list.
    _bindings: tuple[list[Document], dict[str, list[Document]]] | None = None
    #: Admitted objects the snapshot does not show yet: identity -> (object, expiry, the
    #: snapshot's own version it replaced, if any).
    _reserved: dict[tuple[str, str, str], tuple[Document, float, Document | None]] = field(default_factory=dict)

    def reserve(self, doc: Document, seconds: float, now: float | None = None) -> None:
        """Count an admitted object as running from now on, for `seconds` (or until the
        snapshot shows it): the next review in its domain sees it."""
        now = time.monotonic() if now is None else now
        self.expire(now)
        key = identity(doc)
        replaced = self._reserved[key][2] if key in self._reserved else self.by_identity.get(key)
        self._reserved[key] = (doc, now + seconds, replaced)
        self._replace({key: doc})

    def expire(self, now: float | None = None) -> None:
        """Drop reservations past their time; the snapshot's own version comes back."""
        now = time.monotonic() if now is None else now
        back: dict[tuple[str, str, str], Document | None] = {}
        for key, (_, until, replaced) in list(self._reserved.items()):
            if until <= now:
                del self._reserved[key]
                back[key] = replaced
        if back:
            self._replace(back)

    def refresh(self, fresh: ClusterView) -> None:
        """Take `fresh`'s objects (a new list or snapshot) in place, keeping the reservations
        it does not show yet: an object it lists as admitted (`shows_admitted`) is counted
        as listed, and its reservation ends."""
        with self.lock:
            self.objects = list(fresh.objects)
            self.by_identity = dict(fresh.by_identity)
            self.owned = dict(fresh.owned)
            self._context = None
            self._plans = {}
            kept: dict[tuple[str, str, str], Document | None] = {}
            for key, (doc, until, _) in list(self._reserved.items()):
                listed = self.by_identity.get(key)
                if listed is not None and shows_admitted(listed.data, doc.data):
                    del self._reserved[key]
                else:
                    self._reserved[key] = (doc, until, listed)
                    kept[key] = doc
            if kept:
                self._replace(kept)

    def _replace(self, docs: dict[tuple[str, str, str], Document | None]) -> None:
        """Each identity's object replaced by `docs`' (None: removed), in one pass over the
        objects: a refresh with many reservations is not one pass per reservation, under the lock."""
        self.objects = [d for d in self.objects if identity(d) not in docs] + [d for d in docs.values() if d is not None]
        for key, doc in docs.items():
            if doc is not None:
                self.by_identity[key] = doc
            else:
                self.by_identity.pop(key, None)
        self._context = None  # the domains are indexed again on the next review
        self._plans = {}

    def beside(self, doc: Document, name: str) -> PlanSource | None:
        """`doc`'s domain as one plan: its neighbours, read once and kept, with `doc`'s models
        added (and the cluster's version of `doc` left out). None when the full grouping
        must decide: no neighbours, several domains, a plan binding, or priority classes."""
        from ..readers import kubernetes

        context = self._index()
        if _uses_priority_classes(doc.data):
            return None
        placement = kubernetes.placements([*context, doc])[-1]
        if placement.plan is not None or not placement.gpu or not placement.pools:
            return None
        domains = {self._domain_of_pool[p] for p in placement.pools if p in self._domain_of_pool}
        if len(domains) != 1:
            return None
        cached = self._domain_plan(domains.pop())
        if cached is None:
            return None
        base, models_of = cached
        own_sources = kubernetes.read_objects([*context, doc], doc.file, default_name=name)
        if len(own_sources) != 1:
            return None
        own = own_sources[0]
        base_gpus = {gpu.id for gpu in base.plan.gpus}
        if any(gpu.id not in base_gpus for gpu in own.plan.gpus):
            return None
        return _merged(base, own, set(models_of.get(identity(doc), [])), placement.pools[0])

    def _domain_plan(self, domain: int) -> tuple[PlanSource, dict[tuple[str, str, str], list[str]]] | None:
        if domain in self._plans:
            return self._plans[domain]
        from ..readers import kubernetes

        docs = self._domains.get(domain, [])
        result: tuple[PlanSource, dict[tuple[str, str, str], list[str]]] | None = None
        if docs and not any(_uses_priority_classes(d.data) for d in docs):
            try:
                built = kubernetes.read_objects([*self._index(), *docs], self.source, default_name="cluster")
            except InputError:
                built = []
            if len(built) == 1:
                source = built[0]
                by_line = {(d.file, d.line): identity(d) for d in docs}
                models_of: dict[tuple[str, str, str], list[str]] = {}
                positions: dict[tuple[Any, ...], Position] = {}
                for key, pos in source.positions.items():
                    positions[key] = pos if len(pos) > 2 else (pos[0], pos[1], source.file or self.source)
                for model in source.plan.models:
                    at = positions.get(("model", model.name))
                    owner = by_line.get((str(at[2]), at[0])) if at is not None and len(at) > 2 else None
                    if owner is not None:
                        models_of.setdefault(owner, []).append(model.name)
                source.positions = positions
                result = (source, models_of)
        self._plans[domain] = result
        return result

    def batch(self, *, judged: bool = False) -> Batch:
        """The snapshot's objects as neighbours (or, for an audit, as subjects)."""
        return Batch(self.source, list(self.objects), "cluster", together=False, judged=judged, replaceable=True)

    def neighbours(self, docs: list[Document]) -> Batch:
        """Only what can share GPUs with `docs`, and the cluster-wide objects: a review's cost
        then grows with its domain, not with the cluster."""
        from ..readers import kubernetes

        context = self._index()
        placements = kubernetes.placements([*context, *docs])[len(context) :]
        chosen: dict[int, list[Document]] = {}
        for placement in placements:
            for pool in placement.pools:
                domain = self._domain_of_pool.get(pool)
                if domain is not None:
                    chosen[domain] = self._domains[domain]
        picked = [doc for members in chosen.values() for doc in members]
        # A workload bound to a ServingPlan (`gpuadmit.dev/plan`) joins the plan: the
        # cluster's plan of that name and the workloads bound to it are its neighbours.
        seen = {id(doc) for doc in picked}
        for name in dict.fromkeys(p.plan for p in placements if p.plan is not None):
            picked.extend(doc for doc in self.plan_members(name) if id(doc) not in seen)
        return Batch(self.source, [*context, *picked], "cluster", together=False, judged=False, replaceable=True)

    def plan_members(self, key: str) -> list[Document]:
        """The cluster's ServingPlan `key` (`namespace/name`, as a binding names it:
        readers.kubernetes.binding_key) and the workloads bound to it."""
        cached = self._bindings
        if cached is None or cached[0] is not self.objects:
            from ..readers import kubernetes

            index: dict[str, list[Document]] = {}
            for doc, placement in zip(self.objects, kubernetes.placements(self.objects) if self.objects else []):
                if isinstance(doc.data, dict) and doc.data.get("kind") == "ServingPlan":
                    _, namespace, name = identity(doc)
                    index.setdefault(kubernetes.binding_key(namespace, name), []).append(doc)
                elif placement.plan is not None:
                    index.setdefault(placement.plan, []).append(doc)
            # Keyed on the object list itself: every change to the view makes a new list.
            cached = self._bindings = (self.objects, index)
        return list(cached[1].get(key, []))

    def _index(self) -> list[Document]:
        if self._context is not None:
            return self._context
        from ..domains import CONTEXT_KINDS
        from ..readers import kubernetes

        placements = kubernetes.placements(self.objects)
        context: list[Document] = []
        seen_nodes: set[tuple[str, ...]] = set()
        parent: dict[int, int] = {}

        def find(i: int) -> int:
            while parent.setdefault(i, i) != i:
                i = parent[i]
            return i

        pool_first: dict[str, int] = {}
        for n, (doc, placement) in enumerate(zip(self.objects, placements)):
            if not placement.gpu:
                if doc.data.get("kind") == "Node":
                    labels = _labels(doc.data)
                    key = tuple(str(labels.get(k, "")) for k in _NODE_KEYS)
                    if not (key[0] or key[-1]) or key in seen_nodes:
                        continue  # not a GPU node, or one like a node already kept
                    seen_nodes.add(key)
                if doc.data.get("kind") in CONTEXT_KINDS:
                    context.append(doc)
                continue
            find(n)
            for pool in placement.pools:
                if pool in pool_first:
                    parent[find(n)] = find(pool_first[pool])
                else:
                    pool_first[pool] = n
        # Built aside and published at once: reviews in worker threads may ask concurrently.
        domain_of_pool = {pool: find(n) for pool, n in pool_first.items()}
        domains: dict[int, list[Document]] = {}
        for n in parent:
            if any(p in pool_first for p in placements[n].pools):
                domains.setdefault(find(n), []).append(self.objects[n])
        self._domain_of_pool, self._domains = domain_of_pool, domains
        self._context = context
        return context

    def domains_of(self, doc: Document) -> list[str]:
        """The sharing domains `doc` joins that other objects can join too, read beside this
        view's nodes and settings: its shared-GPU pools, and `plan:NAME` for a workload bound
        to a ServingPlan. (On whole GPUs or MIG slices an object is a domain of its own.)"""
        from ..readers import kubernetes

        placement = kubernetes.placements([*self._index(), doc])[-1]
        return [*placement.pools, *([f"plan:{placement.plan}"] if placement.plan is not None else [])]

    def listed(self, key: tuple[str, str, str]) -> Document | None:
        """The cluster's own version of the object `key` (a list, a snapshot; never a
        reservation), or None."""
        return self._reserved[key][2] if key in self._reserved else self.by_identity.get(key)

    def reserved_from(self, key: tuple[str, str, str]) -> str | None:
        """Where the reservation of `key` came from (its document's file), or None."""
        held = self._reserved.get(key)
        return held[0].file if held is not None else None

    def counted_through(self, data: Any, namespace: str) -> Any | None:
        """The object (its data) that counts `data` with its replicas: the controller its
        reference names, when the view really holds it (policy.cluster.owners.controller_in),
        followed up to the object the view counts; None when `data` counts by itself."""
        return _counted_through(data, namespace, self._held)

    def _held(self, kind: str, namespace: str, name: str) -> Any:
        key = (kind, namespace or "default", name)
        doc = self.by_identity.get(key) or self.owned.get(key)
        return doc.data if doc is not None else None

    def find(self, kind: str, namespace: str, name: str) -> Document | None:
        return self.by_identity.get((kind, namespace or "default", name))

    def find_scalable(self, group: str, resource: str, namespace: str, name: str) -> Document | None:
        """The cluster's object behind a `<resource>/scale` request of API group `group`."""
        kind = SCALABLE.get((group, resource))
        found = self.find(kind, namespace, name) if kind else None
        if found is None or not isinstance(found.data, dict):
            return None
        api_version = str(found.data.get("apiVersion") or "")
        return found if (api_version.partition("/")[0] if "/" in api_version else "") == group else None


def load_snapshot(path: str | Path) -> ClusterView:
    """A snapshot file as a ClusterView; an unreadable file is an InputError (exit 2)."""
    file = str(path)
    text = read_text(Path(path), what="cluster snapshot")
    docs = load_documents(text, file)
    if not docs:
        raise InputError("empty cluster snapshot; expected `kubectl get nodes,deployments,... -o yaml` output", file=file)
    return view_of(docs, file)


def view_of(docs: list[Document], source: str) -> ClusterView:
    """The cluster objects among `docs` (List documents unwrapped; objects a counted
    controller owns and Pods that have ended left out: policy.cluster.owners)."""
    items: list[Document] = []
    for doc in docs:
        items.extend(_items(doc))
    view = ClusterView(source)
    held: dict[tuple[str, str, str], Document] = {}
    for doc in items:
        data = doc.data
        if isinstance(data, dict) and data.get("kind") in KINDS and not left_out(data):
            held[identity(doc)] = doc

    def lookup(kind: str, namespace: str, name: str) -> Any:
        found = held.get((kind, namespace or "default", name))
        return found.data if found is not None else None

    for key, doc in held.items():
        # Left out only when the controller it names is held (the whole chain up is then
        # counted, whichever of its objects is kept): a reference naming what is not there
        # counts nothing, and the object is counted from its own spec.
        if _counted_through(doc.data, "", lookup) is not None:
            view.owned[key] = doc
        else:
            view.objects.append(doc)
            view.by_identity[key] = doc
    return view


def _counted_through(data: Any, namespace: str, lookup: Any) -> Any | None:
    """The object `data` is counted through, up its chain of controllers found with `lookup`
    to the one counted itself; None when `data` is counted itself. A chain that comes back
    to where it started (references can name anything) is counted where it closes."""
    seen = [id(data)]
    found = controller_in(data, namespace, lookup)
    top = None
    while found is not None and id(found) not in seen:
        top = found
        seen.append(id(found))
        found = controller_in(found, "", lookup)
    if found is not None and id(found) == id(data):
        return None  # a cycle through `data`: it counts itself, and the rest through it
    return top


def _items(doc: Document) -> list[Document]:
    data = doc.data
    if isinstance(data, dict) and str(data.get("kind", "")).endswith("List") and isinstance(data.get("items"), list):
        items = data["items"]
        lines = items.item_lines if isinstance(items, LineList) else []
        return [
            Document(item, doc.file, n, lines[n][0] if n < len(lines) else doc.line)
            for n, item in enumerate(items)
            if isinstance(item, dict)
        ]
    return [doc]


#: The GFD labels that make GPU nodes alike for judging: nodes with the same values add nothing.
#: GKE's accelerator label (last) names the GPU of a node without GFD labels.
_NODE_KEYS = (
    "nvidia.com/gpu.product",
    "nvidia.com/gpu.memory",
    "nvidia.com/gpu.sharing-strategy",
    "nvidia.com/gpu.replicas",
    "cloud.google.com/gke-accelerator",
)


def _labels(data: dict[str, Any]) -> dict[str, Any]:
    meta = data.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return labels if isinstance(labels, dict) else {}


def _generation(data: Any) -> int:
    """`metadata.generation` (the API server counts spec changes; a CREATE's object has none yet)."""
    meta = data.get("metadata") if isinstance(data, dict) else None
    value = meta.get("generation") if isinstance(meta, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def shows_admitted(listed: Any, admitted: Any) -> bool:
    """Whether a listed object is the admitted one or a later version: at a later
    `metadata.generation`, or at the same one with the same spec, labels and annotations
    (the API server keeps the generation when only metadata changes)."""
    generation, wanted = _generation(listed), _generation(admitted)
    if generation != wanted:
        return generation > wanted
    return _essence(listed) == _essence(admitted)


def _essence(data: Any) -> tuple[Any, Any, Any]:
    """What judging reads of an object and an update can change: spec, labels, annotations
    (the last-applied copy aside: `kubectl apply` writes it, judging never reads it)."""
    data = data if isinstance(data, dict) else {}
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    annotations = dict(meta["annotations"]) if isinstance(meta.get("annotations"), dict) else {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    return data.get("spec"), meta.get("labels") or {}, annotations


def _uses_priority_classes(data: Any) -> bool:
    """Whether an object names a priorityClassName anywhere (ranks are relative to the domain)."""
    if isinstance(data, dict):
        return "priorityClassName" in data or any(_uses_priority_classes(v) for v in data.values() if isinstance(v, (dict, list)))
    if isinstance(data, list):
        return any(_uses_priority_classes(v) for v in data if isinstance(v, (dict, list)))
    return False


def _merged(base: PlanSource, own: PlanSource, replaced: set[str], name: str) -> PlanSource:
    """The neighbours' plan without `replaced` models, with `own`'s models, GPUs shared."""
    kept = [m for m in base.plan.models if m.name not in replaced]
    taken = {m.name for m in kept}
    positions = {k: v for k, v in base.positions.items() if not (k[0] == "model" and k[1] in replaced)}
    added = []
    for model in own.plan.models:
        new_name = model.name
        n = 2
        while new_name in taken:
            new_name, n = f"{model.name}-{n}", n + 1
        taken.add(new_name)
        added.append(model if new_name == model.name else model.model_copy(update={"name": new_name}))
        for key, pos in own.positions.items():
            if key[0] == "model" and key[1] == model.name:
                positions[("model", new_name, *key[2:])] = pos if len(pos) > 2 else (pos[0], pos[1], own.file or "")
    waivers = [w for w in base.plan.waivers if w.model not in replaced] + list(own.plan.waivers)
    metadata = base.plan.metadata.model_copy(update={"name": name})
    plan = base.plan.model_copy(update={"models": [*kept, *added], "waivers": waivers, "metadata": metadata})
    findings = [f for f in base.findings if f.model not in replaced] + list(own.findings)
    positions[("plan", name)] = (own.line or 1, 1, own.file or "")
    return PlanSource(plan=plan, file=own.file, line=own.line, positions=positions, findings=findings)

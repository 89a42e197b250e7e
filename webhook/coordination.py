"""No race across webhook replicas: each domain's admissions coordinated through a Lease.

Every replica of `gpuadmit serve --cluster kube` keeps its own view of the cluster and its
own reservations (objects it admitted that the view does not show yet). Two replicas that
admit into one nearly full sharing domain at the same moment would each miss the other's
object, so the admissions of a domain that several objects share (a pool of shared GPUs,
a ServingPlan that workloads bind to) go through one `coordination.k8s.io/v1` Lease in the
webhook's namespace, named from a hash of the domain, whose annotation holds its live
reservations. A review that would add a GPU workload to such a domain:

1. reads the Lease of each domain it joins (one GET; absent is empty);
2. is judged with the cluster's neighbours and every unexpired reservation there, this
   replica's and the others' (those the view already lists count as listed);
3. if allowed, writes its reservation back with the resourceVersion it read (one PUT, or a
   POST for a new Lease): the API server stores it only if nobody wrote in between;
4. on a conflict (409: another replica wrote first, or created the Lease first), goes back
   to 1 and is judged again with the other replica's reservation, up to `MAX_ATTEMPTS`.

Only then is the review allowed. The API server's writes of one object are linearizable
(optimistic concurrency on resourceVersion), which is all this relies on: no election, no
locks held across requests. When the API cannot be read or written, or conflicts outlast
the attempts, the review is gpuadmit's own failure, answered by the failure policy
(denied; allowed with a warning under `--fail-open`, then without a reservation).
docs/WEBHOOK.md, "No race across replicas", states the guarantee and its limits.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from policy.cluster import ClusterView
from policy.cluster.snapshot import shows_admitted
from policy.domains import identity
from policy.yamlio import Document

from .review import Answer, Review

log = logging.getLogger("gpuadmit.webhook")

#: The annotation of a domain's Lease that holds its reservations (a JSON list).
RESERVATIONS = "gpuadmit.dev/reservations"
#: The annotation that names the domain a Lease coordinates (its name is a hash of it): a
#: pool's name, or `plan:NAME`.
DOMAIN = "gpuadmit.dev/domain"
LABELS = {"app.kubernetes.io/managed-by": "gpuadmit", "gpuadmit.dev/coordination": "domain"}
#: Reads and writes of one review before it gives up (each retry follows a write by another
#: replica, so each is progress for someone).
MAX_ATTEMPTS = 8
#: The API server refuses an object whose annotations together pass 256 KiB
#: (k8s.io/apimachinery/pkg/api/validation, TotalAnnotationSizeLimitB = 256 * 1024).
MAX_RESERVATIONS_BYTES = 240 * 1024


class CoordinationError(Exception):
    """gpuadmit could not coordinate a review with the other replicas: its own failure."""


class Conflict(Exception):
    """The Lease changed since it was read (or was created by another replica first)."""


@dataclass(frozen=True)
class Reservation:
    """One admitted object a domain counts until the cluster view shows it or it expires."""

    kind: str
    namespace: str
    name: str
    #: The uid of the review that admitted it.
    review: str
    #: The replica that admitted it (its pod name).
    replica: str
    #: When it stops counting: seconds since the epoch, by the writer's clock.
    expires: float
    #: `metadata.generation` of the admitted object: a listing at it or later ends it.
    generation: int
    #: The admitted object, as judged (status and managed fields left out).
    manifest: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    def to_json(self) -> dict[str, Any]:
        return {
            "object": {"kind": self.kind, "namespace": self.namespace, "name": self.name},
            "review": self.review,
            "replica": self.replica,
            "expires": _timestamp(self.expires),
            "generation": self.generation,
            "manifest": self.manifest,
        }

    @classmethod
    def from_json(cls, data: Any) -> Reservation:
        try:
            obj = data["object"]
            manifest = data["manifest"]
            if not isinstance(manifest, dict):
                raise TypeError("manifest is not an object")
            return cls(
                kind=str(obj["kind"]),
                namespace=str(obj["namespace"]),
                name=str(obj["name"]),
                review=str(data["review"]),
                replica=str(data.get("replica", "")),
                expires=_seconds(str(data["expires"])),
                generation=int(data.get("generation") or 0),
                manifest=manifest,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CoordinationError(f"a reservation is unreadable ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class LeaseState:
    """A domain's Lease as read: its reservations and the resourceVersion to write against."""

    domain: str
    reservations: tuple[Reservation, ...] = ()
    #: None: the Lease does not exist yet (the write creates it).
    version: str | None = None


class Leases(Protocol):
    """Where the domains' reservations are kept."""

    def read(self, domain: str) -> LeaseState: ...

    def close(self) -> None: ...

    def write(self, state: LeaseState, reservations: list[Reservation]) -> None:
        """Store `reservations` if the Lease is still at `state.version`; else raise Conflict."""
        ...


def lease_name(domain: str) -> str:
    """A stable, valid object name for a domain: pool and plan names come from labels and
    annotations."""
    return "gpuadmit-domain-" + hashlib.sha256(domain.encode("utf-8")).hexdigest()[:32]


def replica_name() -> str:
    """This replica's name: `$POD_NAME` (the manifests set it from the pod's name), else the
    host name (a pod's is its name)."""
    return os.environ.get("POD_NAME") or socket.gethostname()


class KubeLeases:
    """Leases in one namespace of the Kubernetes API, through lightkube's client."""

    def __init__(self, client: Any, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    @classmethod
    def connect(cls, kubeconfig: str | None, timeout_s: float) -> KubeLeases:
        """A client with the credentials `--cluster kube` uses, in their namespace (the pod's)."""
        from policy.cluster.kube import kube_config

        config = kube_config(kubeconfig)
        import httpx2
        from lightkube import Client

        client = Client(config, timeout=httpx2.Timeout(timeout_s))
        return cls(client, client.namespace)

    def close(self) -> None:
        self.client.close()

    def read(self, domain: str) -> LeaseState:
        from lightkube.resources.coordination_v1 import Lease

        name = lease_name(domain)
        try:
            lease = self.client.get(Lease, name, namespace=self.namespace)
        except Exception as exc:  # noqa: BLE001 - sorted below: absent, refused, unreachable
            if _status_code(exc) == 404:
                return LeaseState(domain)
            raise CoordinationError(f"Lease not read: {_reason(exc)} (Lease {self.namespace}/{name})") from None
        meta = lease.metadata
        text = (meta.annotations or {}).get(RESERVATIONS) if meta is not None else None
        try:
            listed = json.loads(text) if text else []
        except ValueError as exc:
            raise CoordinationError(f"Lease {self.namespace}/{name} holds unreadable reservations: {exc}") from None
        if not isinstance(listed, list):
            raise CoordinationError(f"Lease {self.namespace}/{name} holds unreadable reservations: not a list")
        try:
            reservations = tuple(Reservation.from_json(item) for item in listed)
        except CoordinationError as exc:
            raise CoordinationError(f"Lease {self.namespace}/{name}: {exc}") from None
        return LeaseState(domain, reservations, meta.resourceVersion if meta is not None else None)

    def write(self, state: LeaseState, reservations: list[Reservation]) -> None:
        from lightkube.models.coordination_v1 import LeaseSpec
        from lightkube.models.meta_v1 import ObjectMeta
        from lightkube.resources.coordination_v1 import Lease

        name = lease_name(state.domain)
        text = json.dumps([r.to_json() for r in reservations], separators=(",", ":"), sort_keys=True)
        lease = Lease(
            metadata=ObjectMeta(
                name=name,
                namespace=self.namespace,
                resourceVersion=state.version,
                labels=dict(LABELS),
                annotations={DOMAIN: state.domain, RESERVATIONS: text},
            ),
            spec=LeaseSpec(),
        )
        try:
            if state.version is None:
                self.client.create(lease)
            else:
                self.client.replace(lease)
        except Exception as exc:  # noqa: BLE001 - sorted below: conflict, refused, unreachable
            if _status_code(exc) == 409:
                raise Conflict(name) from None
            raise CoordinationError(f"Lease not written: {_reason(exc)} (Lease {self.namespace}/{name})") from None


class Coordinator:
    """Judges a review in step with the other replicas (see the module's docstring)."""

    def __init__(
        self,
        leases: Leases,
        ttl_s: float,
        replica: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
        max_attempts: int = MAX_ATTEMPTS,
        count: Callable[[str], None] | None = None,
    ) -> None:
        self.leases = leases
        self.ttl_s = ttl_s
        self.replica = replica or replica_name()
        self.clock = clock
        self.max_attempts = max_attempts
        #: Told each outcome: written, conflict, failed (the webhook's metrics).
        self.count = count or (lambda result: None)

    def close(self) -> None:
        self.leases.close()

    def judge(self, review: Review, cluster: ClusterView, decide: Callable[[], Answer], due: float | None = None) -> Answer:
        """`decide()`'s answer, with every shared domain the admitted object joins coordinated.
        Called under `cluster.lock`. Raises CoordinationError when coordination fails."""
        try:
            return self._judge(review, cluster, decide, due)
        except CoordinationError:
            self.count("failed")
            raise

    def _judge(self, review: Review, cluster: ClusterView, decide: Callable[[], Answer], due: float | None) -> Answer:
        from .neighbours import admitted

        doc = admitted(review, cluster)
        domains = sorted(cluster.domains_of(doc)) if doc is not None else []
        if doc is None or not domains:
            # Nothing it adds shares a GPU with another object: no other review can take its room.
            answer = decide()
            if answer.allowed and doc is not None and not review.dry_run:
                cluster.reserve(doc, self.ttl_s)
            return answer
        written: list[LeaseState] = []
        for attempt in range(self.max_attempts):
            self._check(due, review)
            states = [self.leases.read(domain) for domain in domains]
            self._hold(cluster, states, doc)
            answer = decide()
            if not answer.allowed or review.dry_run:
                self._withdraw(written, review)
                return answer
            self._check(due, review)
            mine = self._reservation(review, doc)
            try:
                for state in states:
                    self.leases.write(state, self._kept(state, mine, cluster))
                    written.append(state)
                    self.count("written")
            except Conflict as conflict:
                self.count("conflict")
                log.info(
                    "coordination conflict",
                    extra={"event": "coordination-conflict", "uid": review.uid, "lease": str(conflict), "attempt": attempt + 1},
                )
                # The other writer just made progress; a short random pause keeps two replicas
                # from meeting again on the next attempt.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                continue
            cluster.reserve(doc, self.ttl_s)
            return answer
        self._withdraw(written, review)
        raise CoordinationError(
            f"the domain's Lease kept changing: {self.max_attempts} attempts, each written first by another replica"
        )

    def _hold(self, cluster: ClusterView, states: list[LeaseState], doc: Document) -> None:
        """Count the Leases' reservations in the view (the reviewed object's own aside: its new
        version replaces it), unless expired or already listed there."""
        now = self.clock()
        own = identity(doc)
        for state in states:
            for reservation in state.reservations:
                key = reservation.key
                left = reservation.expires - now
                if key == own or left <= 0 or shows(cluster, reservation):
                    continue
                source = f"admitted/{reservation.review}"
                if cluster.reserved_from(key) == source:
                    continue  # already counted (this replica's own, or read before)
                cluster.reserve(Document(reservation.manifest, source, 0, 1), left)

    def _reservation(self, review: Review, doc: Document) -> Reservation:
        kind, namespace, name = identity(doc)
        return Reservation(
            kind=kind,
            namespace=namespace,
            name=name,
            review=review.uid,
            replica=self.replica,
            expires=self.clock() + self.ttl_s,
            generation=_generation(doc.data),
            manifest=_manifest(doc.data),
        )

    def _kept(self, state: LeaseState, mine: Reservation, cluster: ClusterView) -> list[Reservation]:
        """The Lease's reservations to write: the unexpired ones of other objects, and `mine`.
        Ones the view lists go only when the annotation would pass the API server's limit:
        another replica's view may not show them yet."""
        now = self.clock()
        kept = [r for r in state.reservations if r.expires > now and r.key != mine.key]
        kept.sort(key=lambda r: r.expires)
        while _size([*kept, mine]) > MAX_RESERVATIONS_BYTES:
            listed = next((r for r in kept if shows(cluster, r)), None)
            if listed is None:
                raise CoordinationError(
                    f"the reservations of {state.domain} pass the {MAX_RESERVATIONS_BYTES // 1024} KiB a Lease annotation can hold"
                )
            kept.remove(listed)
        return [*kept, mine]

    def _withdraw(self, written: list[LeaseState], review: Review) -> None:
        """Take a review's reservation back out of the Leases an earlier attempt wrote it to
        (an object in several domains, denied on a later attempt). Best effort: one that stays
        expires with its TTL."""
        for domain in sorted({state.domain for state in written}):
            for _ in range(self.max_attempts):
                try:
                    state = self.leases.read(domain)
                    if not any(r.review == review.uid for r in state.reservations):
                        break
                    self.leases.write(state, [r for r in state.reservations if r.review != review.uid])
                    break
                except Conflict:
                    continue
                except CoordinationError as exc:
                    log.warning("reservation not withdrawn", extra={"event": "coordination-withdraw", "error": str(exc)})
                    break
        written.clear()

    @staticmethod
    def _check(due: float | None, review: Review) -> None:
        if due is not None and time.monotonic() > due:
            raise CoordinationError(f"the deadline passed before {review.subject} could be coordinated")


def shows(cluster: ClusterView, reservation: Reservation) -> bool:
    """Whether the cluster view lists the reserved object as admitted (it then counts as
    listed, never twice): policy.cluster.snapshot.shows_admitted."""
    listed = cluster.listed(reservation.key)
    return listed is not None and shows_admitted(listed.data, reservation.manifest)


def _manifest(data: Any) -> dict[str, Any]:
    """What a reservation keeps of an admitted object: what judging reads, without its status,
    managed fields or last-applied copy (which would double it)."""
    kept = {k: copy.deepcopy(v) for k, v in data.items() if k != "status"} if isinstance(data, dict) else {}
    meta = kept.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    return kept


def _generation(data: Any) -> int:
    meta = data.get("metadata") if isinstance(data, dict) else None
    value = meta.get("generation") if isinstance(meta, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _size(reservations: list[Reservation]) -> int:
    return len(json.dumps([r.to_json() for r in reservations], separators=(",", ":"), sort_keys=True).encode("utf-8"))


def _timestamp(seconds: float) -> str:
    """RFC 3339 with microseconds, as the API server writes a MicroTime."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def _status_code(exc: Exception) -> int | None:
    status = getattr(exc, "status", None)
    code = getattr(status, "code", None)
    return code if isinstance(code, int) else None


def _reason(exc: Exception) -> str:
    """One line: the API server's refusal (code and message), or why it could not be reached."""
    code = _status_code(exc)
    if code is not None:
        message = getattr(getattr(exc, "status", None), "message", "") or ""
        return f"API server answered {code}: {message}".rstrip(": ")
    return f"API server unreachable: {type(exc).__name__}: {exc}"

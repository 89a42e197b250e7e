"""The coordinator's own decisions, with Leases kept in memory (compare-and-swap on a version
number, as the API server does on resourceVersion): an object in two pools, a conflict on
the second Lease, the retry bound and expiry by the coordinator's clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from replicas_support import NODE, deployment

from policy.cluster import ClusterView, view_of
from policy.yamlio import Document
from webhook.coordination import Conflict, CoordinationError, Coordinator, LeaseState, Reservation
from webhook.review import Answer, Review, allow, deny


class MemoryLeases:
    """Each domain's reservations and version; `conflicts[domain]` writes lose a race first."""

    def __init__(self) -> None:
        self.store: dict[str, tuple[int, tuple[Reservation, ...]]] = {}
        self.conflicts: dict[str, int] = {}
        self.writes: list[str] = []

    def read(self, domain: str) -> LeaseState:
        if domain not in self.store:
            return LeaseState(domain)
        version, reservations = self.store[domain]
        return LeaseState(domain, reservations, str(version))

    def write(self, state: LeaseState, reservations: list[Reservation]) -> None:
        current = self.store.get(state.domain)
        if self.conflicts.get(state.domain, 0) > 0:
            self.conflicts[state.domain] -= 1
            self.store[state.domain] = ((current[0] if current else 0) + 1, current[1] if current else ())
            raise Conflict(state.domain)
        if (str(current[0]) if current else None) != state.version:
            raise Conflict(state.domain)
        self.store[state.domain] = ((current[0] if current else 0) + 1, tuple(reservations))
        self.writes.append(state.domain)

    def close(self) -> None:
        return None

    def names(self, pool: str) -> list[str]:
        return [r.name for r in self.store.get(pool, (0, ()))[1]]


class TwoPools(ClusterView):
    """A view in which every GPU workload joins two pools (a pod with a time-sliced and a
    HAMi container does)."""

    def domains_of(self, doc: Document) -> list[str]:
        return ["pool-a", "pool-b"]


def _view() -> TwoPools:
    plain = view_of([Document(NODE, "cluster", 0, 1)], "cluster")
    return TwoPools(plain.source, plain.objects, plain.by_identity)


def _review(name: str) -> Review:
    return Review(
        uid=f"uid-{name}",
        kind="Deployment",
        group="apps",
        operation="CREATE",
        namespace="prod",
        name=name,
        dry_run=False,
        sub_resource="",
        object=deployment(name),
        resource="deployments",
    )


def _answers(*answers: Answer) -> Callable[[], Answer]:
    queue = list(answers)
    return lambda: queue.pop(0)


def test_an_object_in_two_pools_is_reserved_in_both() -> None:
    leases = MemoryLeases()
    coordinator = Coordinator(leases, 60, "replica-a")
    assert coordinator.judge(_review("svc-0"), _view(), _answers(allow())).allowed
    assert leases.names("pool-a") == ["svc-0"] and leases.names("pool-b") == ["svc-0"]


def test_denied_after_a_conflict_on_the_second_pool_its_first_reservation_is_taken_back() -> None:
    leases = MemoryLeases()
    leases.conflicts["pool-b"] = 1
    coordinator = Coordinator(leases, 60, "replica-a")
    # Allowed, written to pool-a, refused on pool-b (another replica wrote it first), judged
    # again with that replica's admission: denied. pool-a must not keep a reservation for it.
    answer = coordinator.judge(_review("svc-0"), _view(), _answers(allow(), deny(403, "full")))
    assert not answer.allowed
    assert leases.names("pool-a") == [] and leases.names("pool-b") == []


def test_conflicts_past_the_attempts_are_a_coordination_failure() -> None:
    leases = MemoryLeases()
    leases.conflicts["pool-a"] = 100
    counted: list[str] = []
    coordinator = Coordinator(leases, 60, "replica-a", max_attempts=3, count=counted.append)
    with pytest.raises(CoordinationError, match="3 attempts"):
        coordinator.judge(_review("svc-0"), _view(), _answers(allow(), allow(), allow()))
    assert counted == ["conflict", "conflict", "conflict", "failed"]


def test_a_reservation_counts_until_its_expiry_by_the_coordinators_clock() -> None:
    now = [1000.0]
    leases = MemoryLeases()
    first = Coordinator(leases, 60, "replica-a", clock=lambda: now[0])
    assert first.judge(_review("svc-0"), _view(), _answers(allow())).allowed

    seen: list[list[str]] = []

    def look(view: ClusterView) -> Callable[[], Answer]:
        def decide() -> Answer:
            seen.append(sorted(key[2] for key in view._reserved))
            return allow()

        return decide

    second = Coordinator(leases, 60, "replica-b", clock=lambda: now[0])
    now[0] += 59  # within its time: counted by a replica that never saw it
    view = _view()
    second.judge(_review("svc-1"), view, look(view))
    now[0] += 2  # past it: neither counted nor kept at the next write
    view = _view()
    second.judge(_review("svc-2"), view, look(view))
    assert seen == [["svc-0"], ["svc-1"]]
    assert leases.names("pool-a") == ["svc-1", "svc-2"]


def test_a_dry_run_writes_nothing() -> None:
    leases = MemoryLeases()
    review = dataclasses.replace(_review("svc-0"), dry_run=True)
    assert Coordinator(leases, 60, "replica-a").judge(review, _view(), _answers(allow())).allowed
    assert not leases.writes

"""No race across webhook replicas: `serve --cluster kube` coordinates each pool's admissions
through a Lease written with resourceVersion compare-and-swap (webhook/coordination.py).

The replicas are webhook apps in this process, each with its own cluster view and
reservations, sharing the fake API server's Leases (tests/fakes/kube_leases.py answers as
the API server does: 409 on a stale resourceVersion or a create that lost the race).
tests/cluster/test_replicas_served.py runs the same race through real servers over TLS."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes.kube_api import FakeApiServer
from fakes.kube_leases import Leases
from replicas_support import NODE, POOL, close_replicas, create, deployment, messages, replica, scrape, send

pytest.importorskip("lightkube")

from webhook.coordination import RESERVATIONS, Reservation, lease_name  # noqa: E402


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[FakeApiServer, Leases, Path]]:
    server = FakeApiServer([NODE])
    leases = Leases(server)
    with server:
        try:
            yield server, leases, server.kubeconfig(tmp_path)
        finally:
            close_replicas()


def reservations(server: FakeApiServer) -> list[dict[str, Any]]:
    lease = server.get("Lease", "default", lease_name(POOL))
    assert lease is not None, "no Lease for the pool"
    found: list[dict[str, Any]] = json.loads(lease["metadata"]["annotations"][RESERVATIONS])
    return found


@pytest.mark.parametrize("replicas", [1, 2])
def test_twenty_concurrent_creates_into_room_for_five_admit_exactly_five(
    api: tuple[FakeApiServer, Leases, Path], replicas: int
) -> None:
    server, _, kubeconfig = api
    apps = [replica(kubeconfig) for _ in range(replicas)]
    answers = asyncio.run(send(apps, [create(deployment(f"svc-{n}")) for n in range(20)]))
    allowed = [a for a in answers if a["allowed"]]
    assert len(allowed) == 5, messages(answers)
    assert all("[memory-fit]" in a["status"]["message"] for a in answers if not a["allowed"]), messages(answers)
    assert len(reservations(server)) == 5


def test_without_coordination_two_replicas_each_fill_the_pool(api: tuple[FakeApiServer, Leases, Path]) -> None:
    # The race the Leases close: each replica counts only its own admissions
    # (`--no-coordination`, meant for a single replica).
    _, leases, kubeconfig = api
    apps = [replica(kubeconfig, coordinate=False) for _ in range(2)]
    answers = asyncio.run(send(apps, [create(deployment(f"svc-{n}")) for n in range(20)]))
    assert sum(a["allowed"] for a in answers) == 10 and not leases.writes


def test_a_second_replica_sees_the_first_ones_admissions(api: tuple[FakeApiServer, Leases, Path]) -> None:
    _, _, kubeconfig = api
    first, second = replica(kubeconfig), replica(kubeconfig)
    assert all(a["allowed"] for a in asyncio.run(send([first], [create(deployment(f"svc-{n}")) for n in range(5)])))
    answer = asyncio.run(send([second], [create(deployment("svc-5"))]))[0]
    assert answer["allowed"] is False and "[memory-fit]" in answer["status"]["message"]


def test_a_stale_resource_version_is_read_again_and_judged_with_the_other_write(
    api: tuple[FakeApiServer, Leases, Path],
) -> None:
    server, leases, kubeconfig = api
    app = replica(kubeconfig)
    assert all(a["allowed"] for a in asyncio.run(send([app], [create(deployment(f"svc-{n}")) for n in range(4)])))
    # Another replica's admission lands between this replica's read and its write: its
    # write carries a stale resourceVersion, is refused with 409, and the review is judged
    # again with that reservation, which now fills the pool.
    lease = server.get("Lease", "default", lease_name(POOL))
    assert lease is not None
    other = Reservation("Deployment", "prod", "elsewhere", "review-x", "replica-b", time.time() + 600, 0, deployment("elsewhere"))
    original = leases._replace_locked

    def racing(request: Any, match: Any) -> tuple[int, Any]:
        stored = server.get("Lease", "default", lease_name(POOL))
        if stored is not None and "elsewhere" not in stored["metadata"]["annotations"][RESERVATIONS]:
            entries = json.loads(stored["metadata"]["annotations"][RESERVATIONS]) + [other.to_json()]
            stored["metadata"]["annotations"][RESERVATIONS] = json.dumps(entries)
            server.modify(stored)
        return original(request, match)

    leases._replace_locked = racing  # type: ignore[method-assign]
    answer = asyncio.run(send([app], [create(deployment("svc-4"))]))[0]
    assert ("PUT", 409) in leases.writes
    assert answer["allowed"] is False and "[memory-fit]" in answer["status"]["message"], answer
    assert sorted(r["object"]["name"] for r in reservations(server)) == ["elsewhere", "svc-0", "svc-1", "svc-2", "svc-3"]


def test_a_conflict_that_leaves_room_ends_allowed(api: tuple[FakeApiServer, Leases, Path]) -> None:
    server, leases, kubeconfig = api
    app = replica(kubeconfig)
    assert asyncio.run(send([app], [create(deployment("svc-0"))]))[0]["allowed"]
    leases.conflict_next(2)
    answer = asyncio.run(send([app], [create(deployment("svc-1"))]))[0]
    assert answer["allowed"] is True, answer
    assert [s for m, s in leases.writes if m == "PUT"] == [409, 409, 200]
    assert sorted(r["object"]["name"] for r in reservations(server)) == ["svc-0", "svc-1"]
    exposed = asyncio.run(scrape(app))
    assert 'gpuadmit_coordination_total{result="conflict"} 2.0' in exposed
    assert 'gpuadmit_coordination_total{result="written"} 2.0' in exposed


def test_two_replicas_creating_the_lease_at_once_both_count(api: tuple[FakeApiServer, Leases, Path]) -> None:
    server, leases, kubeconfig = api
    apps = [replica(kubeconfig), replica(kubeconfig)]
    answers = asyncio.run(send(apps, [create(deployment("svc-0")), create(deployment("svc-1"))]))
    assert all(a["allowed"] for a in answers), messages(answers)
    # Whichever POST came second lost the race (409 AlreadyExists) and was written as a PUT.
    assert sorted(r["object"]["name"] for r in reservations(server)) == ["svc-0", "svc-1"]


def test_an_expired_reservation_no_longer_counts_and_is_pruned(api: tuple[FakeApiServer, Leases, Path]) -> None:
    server, _, kubeconfig = api
    now = time.time()
    stale = [
        Reservation("Deployment", "prod", f"gone-{n}", f"old-{n}", "replica-b", now - 1, 0, deployment(f"gone-{n}")).to_json()
        for n in range(5)
    ]
    server.add(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": lease_name(POOL), "namespace": "default", "annotations": {RESERVATIONS: json.dumps(stale)}},
            "spec": {},
        }
    )
    # Five admitted objects that were never created, past their time: the pool is empty again.
    answer = asyncio.run(send([replica(kubeconfig)], [create(deployment("svc-0"))]))[0]
    assert answer["allowed"] is True, answer
    assert [r["object"]["name"] for r in reservations(server)] == ["svc-0"]


def test_a_reservation_in_its_time_counts_on_a_replica_that_never_saw_it(api: tuple[FakeApiServer, Leases, Path]) -> None:
    server, _, kubeconfig = api
    live = [
        Reservation(
            "Deployment", "prod", f"new-{n}", f"r-{n}", "replica-b", time.time() + 600, 0, deployment(f"new-{n}")
        ).to_json()
        for n in range(5)
    ]
    server.add(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": lease_name(POOL), "namespace": "default", "annotations": {RESERVATIONS: json.dumps(live)}},
            "spec": {},
        }
    )
    answer = asyncio.run(send([replica(kubeconfig)], [create(deployment("svc-0"))]))[0]
    assert answer["allowed"] is False and "[memory-fit]" in answer["status"]["message"]


def test_a_reservation_ends_when_the_cluster_lists_the_object(api: tuple[FakeApiServer, Leases, Path]) -> None:
    server, _, kubeconfig = api
    first = replica(kubeconfig)
    assert all(a["allowed"] for a in asyncio.run(send([first], [create(deployment(f"svc-{n}")) for n in range(5)])))
    # The objects were created: the API lists them. A replica started now counts each once
    # (listed), not twice (listed and reserved), so the pool is exactly full, not over.
    for n in range(5):
        server.add(deployment(f"svc-{n}"))
    second = replica(kubeconfig)
    update = create(deployment("svc-0"))
    update["request"]["operation"] = "UPDATE"
    assert asyncio.run(send([second], [update]))[0]["allowed"] is True
    assert asyncio.run(send([second], [create(deployment("svc-5"))]))[0]["allowed"] is False


def test_a_scale_on_one_replica_and_a_create_on_the_other_do_not_both_take_the_last_room(
    api: tuple[FakeApiServer, Leases, Path],
) -> None:
    server, _, kubeconfig = api
    for n in range(4):  # four running: room for one more replica of 14 GiB
        server.add(deployment(f"svc-{n}"))
    apps = [replica(kubeconfig), replica(kubeconfig)]
    scale = create({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "svc-0", "namespace": "prod"}})
    scale["request"].update(
        operation="UPDATE",
        subResource="scale",
        kind={"group": "autoscaling", "version": "v1", "kind": "Scale"},
        object={**scale["request"]["object"], "spec": {"replicas": 2}},
    )
    answers = asyncio.run(send(apps, [scale, create(deployment("svc-4"))]))
    assert sum(a["allowed"] for a in answers) == 1, messages(answers)


def test_an_update_of_annotations_alone_counts_on_the_other_replica(api: tuple[FakeApiServer, Leases, Path]) -> None:
    server, _, kubeconfig = api
    for n in range(4):
        server.add(deployment(f"svc-{n}"))  # listed at generation 1
    first, second = replica(kubeconfig), replica(kubeconfig)
    # The API server keeps the generation when only annotations change: the listing at that
    # generation still holds the old size, so the reservation must keep counting.
    bigger = deployment("svc-0", gpu_gb=28.0)
    bigger["metadata"]["generation"] = 1
    update = create(bigger)
    update["request"]["operation"] = "UPDATE"
    assert asyncio.run(send([first], [update]))[0]["allowed"] is True
    answer = asyncio.run(send([second], [create(deployment("svc-4"))]))[0]
    assert answer["allowed"] is False and "[memory-fit]" in answer["status"]["message"], answer


def test_a_dry_run_reads_the_reservations_and_writes_none(api: tuple[FakeApiServer, Leases, Path]) -> None:
    server, leases, kubeconfig = api
    apps = [replica(kubeconfig), replica(kubeconfig)]
    assert all(a["allowed"] for a in asyncio.run(send(apps[:1], [create(deployment(f"svc-{n}")) for n in range(5)])))
    writes = len(leases.writes)
    answer = asyncio.run(send(apps[1:], [create(deployment("svc-5"), dry_run=True)]))[0]
    assert answer["allowed"] is False  # judged exactly like the real request
    assert len(leases.writes) == writes


@pytest.mark.parametrize("fail_open", [False, True])
def test_an_api_that_cannot_be_written_follows_the_failure_policy(
    api: tuple[FakeApiServer, Leases, Path], fail_open: bool
) -> None:
    _, leases, kubeconfig = api
    app = replica(kubeconfig, fail_open=fail_open)
    leases.fail_next(1, 503)
    answer = asyncio.run(send([app], [create(deployment("svc-0"))]))[0]
    text = "replicas not coordinated: Lease not written: API server answered 503"
    if fail_open:
        # A warning is clipped to 119 characters: its start says what failed.
        assert answer["allowed"] is True and answer["warnings"][0].startswith(
            f"gpuadmit could not judge Deployment prod/svc-0: {text[:40]}"
        ), answer
    else:
        assert answer["allowed"] is False and answer["status"]["code"] == 500 and text in answer["status"]["message"], answer
    assert 'gpuadmit_coordination_total{result="failed"} 1.0' in asyncio.run(scrape(app))


@pytest.mark.parametrize("fail_open", [False, True])
def test_an_unreachable_api_follows_the_failure_policy(api: tuple[FakeApiServer, Leases, Path], fail_open: bool) -> None:
    server, _, kubeconfig = api
    app = replica(kubeconfig, fail_open=fail_open)
    server.stop()  # the API server goes away after the replica listed the cluster
    answer = asyncio.run(send([app], [create(deployment("svc-0"))]))[0]
    text = "replicas not coordinated: Lease not read: API server unreachable"
    if fail_open:
        # A warning is clipped to 119 characters: its start says what failed.
        assert answer["allowed"] is True and answer["warnings"][0].startswith(
            f"gpuadmit could not judge Deployment prod/svc-0: {text[:40]}"
        ), answer
    else:
        assert answer["allowed"] is False and answer["status"]["code"] == 500 and text in answer["status"]["message"], answer


def test_bad_input_is_denied_without_a_lease(api: tuple[FakeApiServer, Leases, Path]) -> None:
    server, leases, kubeconfig = api
    app = replica(kubeconfig, fail_open=True)
    bad = deployment("svc-0")
    bad["metadata"]["annotations"]["gpuadmit.dev/gpu-gb"] = "lots"
    answer = asyncio.run(send([app], [create(bad)]))[0]
    assert answer["allowed"] is False and not leases.writes


def test_workloads_bound_to_one_serving_plan_on_two_replicas_do_not_both_take_its_last_room(
    api: tuple[FakeApiServer, Leases, Path],
) -> None:
    server, _, kubeconfig = api
    # node-a (tests/domains/data/bound): one time-sliced A100 80GB whose model takes 44 GiB;
    # room for one more replica of 16 GiB, not two. A batch model: memory alone decides.
    plan = yaml.safe_load((Path(__file__).parents[1] / "domains" / "data" / "bound" / "node-a.yaml").read_text("utf-8"))
    plan["metadata"] = {"name": "node-a", "namespace": "prod"}
    drop = ("latency_critical", "sla_ms", "rate_limit", "priority")
    plan["models"] = [{k: v for k, v in plan["models"][0].items() if k not in drop}]
    server.add(plan)
    apps = [replica(kubeconfig), replica(kubeconfig)]
    reviews = []
    for n in range(6):
        bound = deployment(f"reranker-{n}", gpu_gb=16.0)
        bound["metadata"]["annotations"]["gpuadmit.dev/plan"] = "node-a"
        del bound["spec"]["template"]["spec"]["nodeSelector"]
        reviews.append(create(bound))
    answers = asyncio.run(send(apps, reviews))
    assert sum(a["allowed"] for a in answers) == 1, messages(answers)
    lease = server.get("Lease", "default", lease_name("plan:prod/node-a"))
    assert lease is not None and len(json.loads(lease["metadata"]["annotations"][RESERVATIONS])) == 1


def test_objects_on_whole_gpus_need_no_lease(api: tuple[FakeApiServer, Leases, Path]) -> None:
    server, leases, kubeconfig = api
    whole = deployment("trainer")
    whole["spec"]["template"]["spec"]["nodeSelector"] = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    answer = asyncio.run(send([replica(kubeconfig)], [create(whole)]))[0]
    assert answer["allowed"] is True and not leases.writes
    assert not [r for r in server.requests if "leases" in r]


def test_a_listing_ends_a_reservation_only_once_it_shows_the_admitted_version() -> None:
    from policy.cluster import view_of
    from policy.yamlio import Document

    def listed(gpu_gb: float, generation: int) -> Any:
        obj = deployment("svc-0", gpu_gb=gpu_gb)
        obj["metadata"]["generation"] = generation
        return view_of([Document(obj, "cluster", 0, 1)], "cluster")

    cluster = listed(14.0, 1)
    bigger = deployment("svc-0", gpu_gb=28.0)
    bigger["metadata"]["generation"] = 1  # annotations alone changed: the same generation
    cluster.reserve(Document(bigger, "admitted/u1", 0, 1), 600)
    cluster.refresh(listed(14.0, 1))  # the old version, listed again: the reservation stays
    assert cluster.reserved_from(("Deployment", "prod", "svc-0")) == "admitted/u1"
    cluster.refresh(listed(28.0, 1))  # the admitted version: the listing counts now
    assert cluster.reserved_from(("Deployment", "prod", "svc-0")) is None
    assert cluster.objects[0].file == "cluster"


@pytest.mark.parametrize("ttl", ["0", "-5", "nan", "100000"])
def test_a_reservation_ttl_out_of_range_is_one_line_and_exit_2(ttl: str) -> None:
    from conftest import run_cli

    run = run_cli("serve", "--plain-http", "--cluster", "kube", "--reservation-ttl", ttl)
    assert run.code == 2 and run.stderr.startswith("gpuadmit: --reservation-ttl") and "Traceback" not in run.stderr, run.stderr


def test_without_coordination_a_reservation_lasts_the_reservation_ttl(api: tuple[FakeApiServer, Leases, Path]) -> None:
    from replicas_support import OPENED

    _, _, kubeconfig = api
    app = replica(kubeconfig, coordinate=False, reservation_ttl_s=5.0)
    assert asyncio.run(send([app], [create(deployment("svc-0"))]))[0]["allowed"]
    cluster = OPENED[-1].cluster
    assert cluster is not None
    ((_, until, _),) = cluster._reserved.values()
    assert until - time.monotonic() <= 5.0  # --reservation-ttl, not a snapshot's 600 s

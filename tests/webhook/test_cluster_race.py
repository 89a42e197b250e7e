"""No race within a replica: concurrent CREATEs into one domain are judged one at a time,
and each admitted object counts (as a reservation) before the next is judged."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from fakes.admission import DEPLOYMENT, SHARED_A100_NODES, review, shared_a100_deployment, webhook_app


def _app(tmp_path: Path) -> Any:
    snapshot = tmp_path / "snapshot.yaml"
    snapshot.write_text(SHARED_A100_NODES, encoding="utf-8")
    # Every review in a worker thread: they really run at the same time.
    return webhook_app(cluster=str(snapshot), inline_max_bytes=0)


async def _send(app: Any, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gpuadmit", timeout=60) as http:
        replies = await asyncio.gather(*(http.post("/validate", json=r) for r in requests))
    return [reply.json()["response"] for reply in replies]


def test_twenty_concurrent_creates_into_room_for_five_admit_exactly_five(tmp_path: Path) -> None:
    app = _app(tmp_path)
    answers = asyncio.run(_send(app, [review(shared_a100_deployment(f"svc-{n}"), kind=DEPLOYMENT) for n in range(20)]))
    allowed = [a for a in answers if a["allowed"]]
    assert len(allowed) == 5, [a.get("status", {}).get("message", "")[:120] for a in answers]
    denied = [a for a in answers if not a["allowed"]]
    assert all("[memory-fit]" in a["status"]["message"] for a in denied)


def test_an_update_of_an_admitted_object_replaces_its_reservation(tmp_path: Path) -> None:
    app = _app(tmp_path)
    first = [review(shared_a100_deployment(f"svc-{n}"), kind=DEPLOYMENT) for n in range(5)]
    assert all(a["allowed"] for a in asyncio.run(_send(app, first)))
    again = review(shared_a100_deployment("svc-0"), operation="UPDATE", kind=DEPLOYMENT)
    assert asyncio.run(_send(app, [again]))[0]["allowed"] is True
    sixth = review(shared_a100_deployment("svc-5"), kind=DEPLOYMENT)
    assert asyncio.run(_send(app, [sixth]))[0]["allowed"] is False


def test_a_dry_run_reserves_nothing(tmp_path: Path) -> None:
    app = _app(tmp_path)
    dry = [review(shared_a100_deployment(f"svc-{n}"), kind=DEPLOYMENT, dry_run=True) for n in range(8)]
    assert all(a["allowed"] for a in asyncio.run(_send(app, dry)))


def test_a_reservation_ends_when_the_cluster_lists_the_object_and_stays_until_then() -> None:
    from policy.cluster import view_of
    from policy.yamlio import Document

    def view(*objects: dict[str, Any]) -> Any:
        return view_of([Document(o, "cluster", n, n + 1) for n, o in enumerate(objects)], "cluster")

    cluster = view()
    admitted = shared_a100_deployment("svc-0")
    admitted["metadata"]["generation"] = 2
    cluster.reserve(Document(admitted, "admitted", 0, 1), 600)
    cluster.refresh(view())  # listed before the API server stored it: still reserved
    assert [d.data["metadata"]["name"] for d in cluster.objects] == ["svc-0"]
    older = shared_a100_deployment("svc-0")
    older["metadata"]["generation"] = 1
    cluster.refresh(view(older))  # the previous version: the reservation still counts
    assert cluster.objects[0].data["metadata"]["generation"] == 2
    listed = shared_a100_deployment("svc-0")
    listed["metadata"]["generation"] = 2
    cluster.refresh(view(listed))  # listed as admitted: the listing counts, the reservation ends
    assert cluster.objects[0].file == "cluster" and not cluster._reserved

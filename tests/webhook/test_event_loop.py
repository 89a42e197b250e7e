"""The event loop never waits on the cluster view: while a refresh (or a review judged in a
thread) holds the view, a small review waits for it in a worker thread, and probes and
other requests are answered meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from fakes import admission
from fakes.admission import SHARED_A100_NODES, review, shared_a100_deployment

from webhook.app import Webhook, build_app

DEPLOYMENT = shared_a100_deployment("svc")

#: How long the view stays held: long enough that an event loop blocked on it shows.
HELD_S = 1.5


def _webhook(tmp_path: Path, **settings: Any) -> Webhook:
    snapshot = tmp_path / "snapshot.yaml"
    snapshot.write_text(SHARED_A100_NODES, encoding="utf-8")
    made: Webhook = admission.webhook(cluster=str(snapshot), **settings)  # small reviews judged inline by default
    return made


async def _review_and_probe_while_held(webhook: Webhook) -> tuple[dict[str, Any], float, float]:
    """Hold the view in another thread (as a refresh does), send a review, then probe
    /healthz: returns the review's answer, when the probe was answered and when the view
    was let go (both on time.monotonic)."""
    assert webhook.cluster is not None
    lock = webhook.cluster.lock
    held = threading.Event()
    released_at: list[float] = []

    def hold() -> None:
        with lock:
            held.set()
            time.sleep(HELD_S)
            released_at.append(time.monotonic())

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    transport = httpx.ASGITransport(app=build_app(webhook))
    async with httpx.AsyncClient(transport=transport, base_url="http://gpuadmit", timeout=30) as http:
        judged = asyncio.create_task(http.post("/validate", json=review(DEPLOYMENT, kind=("apps", "v1", "Deployment"))))
        await asyncio.sleep(0.05)  # the review has reached the view's lock
        probe = await http.get("/healthz")
        probed_at = time.monotonic()
        assert probe.status_code == 200
        answer = (await judged).json()["response"]
    holder.join()
    return answer, probed_at, released_at[0]


def test_a_probe_is_answered_while_a_refresh_holds_the_cluster_view(tmp_path: Path) -> None:
    answer, probed_at, released_at = asyncio.run(_review_and_probe_while_held(_webhook(tmp_path)))
    assert probed_at < released_at, "the event loop waited for the cluster view's lock"
    # The review itself waited for the view and was then judged with it, not dropped.
    assert answer["allowed"] is True, answer


def test_a_review_judged_inline_is_still_counted_before_the_next(tmp_path: Path) -> None:
    """Inline judging takes the view's lock as the threaded path does: an admitted object is
    reserved, so a second one that only fits alone is denied."""
    webhook = _webhook(tmp_path)
    big = {**DEPLOYMENT, "metadata": {**DEPLOYMENT["metadata"], "annotations": {"gpuadmit.dev/gpu-gb": "50"}}}
    other = {**big, "metadata": {**big["metadata"], "name": "svc-2"}}

    async def both() -> list[dict[str, Any]]:
        transport = httpx.ASGITransport(app=build_app(webhook))
        async with httpx.AsyncClient(transport=transport, base_url="http://gpuadmit", timeout=30) as http:
            first = await http.post("/validate", json=review(big, kind=("apps", "v1", "Deployment")))
            second = await http.post("/validate", json=review(other, kind=("apps", "v1", "Deployment")))
        return [first.json()["response"], second.json()["response"]]

    first, second = asyncio.run(both())
    assert first["allowed"] is True, first
    assert second["allowed"] is False and "[memory-fit]" in second["status"]["message"], second


def test_a_review_past_its_deadline_while_the_view_is_held_reserves_nothing(tmp_path: Path) -> None:
    """The API server gets the deadline's answer and does not create the object, so the
    object must not keep room in the view: the next one that fits alone is admitted."""
    served = _webhook(tmp_path, deadline_s=0.3)
    assert served.cluster is not None
    big = {**DEPLOYMENT, "metadata": {**DEPLOYMENT["metadata"], "annotations": {"gpuadmit.dev/gpu-gb": "50"}}}
    other = {**big, "metadata": {**big["metadata"], "name": "svc-2"}}
    lock = served.cluster.lock

    async def late_then_next() -> list[dict[str, Any]]:
        transport = httpx.ASGITransport(app=build_app(served))
        async with httpx.AsyncClient(transport=transport, base_url="http://gpuadmit", timeout=30) as http:
            lock.acquire()
            try:
                late = await http.post("/validate", json=review(big, kind=("apps", "v1", "Deployment")))
                await asyncio.sleep(0.1)
            finally:
                lock.release()
            await asyncio.sleep(0.5)  # the review's worker thread takes the view and finishes
            following = await http.post("/validate", json=review(other, kind=("apps", "v1", "Deployment")))
        return [late.json()["response"], following.json()["response"]]

    late, following = asyncio.run(late_then_next())
    assert late["allowed"] is False and "deadline" in late["status"]["message"], late
    assert following["allowed"] is True, following

"""The replica race through real servers: `gpuadmit serve --cluster kube` processes over TLS,
each with its own memory, sharing a fake API server's Leases (tests/fakes/kube_leases.py).
Twenty concurrent CREATEs into a pool with room for five admit exactly five, with one
replica and with two."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.kube_api import FakeApiServer
from fakes.webhook_servers import webhook_support
from fakes.kube_leases import Leases
from replicas_support import NODE, create, deployment, messages

pytest.importorskip("lightkube")


support = webhook_support()

from webhook.coordination import RESERVATIONS, lease_name  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeApiServer, Leases, list[Any]]]:
    """The fake API server and two `gpuadmit serve --cluster kube` replicas of it."""
    folder = tmp_path_factory.mktemp("replicas")
    server = FakeApiServer([NODE])
    leases = Leases(server)
    with server:
        kubeconfig = server.kubeconfig(folder)
        certs = support.make_certs(folder)
        replicas: list[Any] = []
        try:
            options = ("--cluster", "kube", "--kubeconfig", str(kubeconfig), "--deadline", "20")
            for _ in range(2):
                replicas.append(support.start_server(folder, *options, certs=certs))
            yield server, leases, replicas
        finally:
            for running in replicas:
                running.stop()


async def _send(replicas: list[Any], reviews: list[dict[str, Any]]) -> list[dict[str, Any]]:
    context = ssl.create_default_context(cafile=str(replicas[0].certs.ca_file))
    clients = [httpx.AsyncClient(base_url=r.url, verify=context, timeout=60) for r in replicas]
    try:
        replies = await asyncio.gather(*(clients[n % len(clients)].post("/validate", json=r) for n, r in enumerate(reviews)))
    finally:
        for client in clients:
            await client.aclose()
    assert all(reply.status_code == 200 for reply in replies)
    return [reply.json()["response"] for reply in replies]


def _reviewed(running: Any) -> float:
    """Deployment CREATEs a server has answered, allowed or denied."""
    labels = 'kind="Deployment",operation="CREATE"'
    return sum(running.metric(f'gpuadmit_reviews_total{{{labels},decision="{d}"}}') for d in ("allowed", "denied", "error"))


@pytest.mark.parametrize("replicas", [1, 2])
def test_twenty_concurrent_creates_into_room_for_five_admit_exactly_five(
    served: tuple[FakeApiServer, Leases, list[Any]], replicas: int
) -> None:
    server, _, running = served
    pool = f"pool-{replicas}"  # each case fills a pool of its own
    reviews = []
    for n in range(20):
        obj = deployment(f"svc-{n}")
        obj["metadata"]["annotations"]["gpuadmit.dev/gpu-pool"] = pool
        reviews.append(create(obj))
    before = [_reviewed(r) for r in running]
    answers = asyncio.run(_send(running[:replicas], reviews))
    # Each replica judged its share: with two, ten reviews each, at the same time.
    assert [_reviewed(r) - b for r, b in zip(running, before)][:replicas] == [20 // replicas] * replicas
    allowed = [a for a in answers if a["allowed"]]
    assert len(allowed) == 5, messages(answers)
    assert all("[memory-fit]" in a["status"]["message"] for a in answers if not a["allowed"]), messages(answers)
    lease = server.get("Lease", "default", lease_name(pool))
    assert lease is not None and len(json.loads(lease["metadata"]["annotations"][RESERVATIONS])) == 5

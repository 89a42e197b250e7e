"""`--cluster kube` with the real client library (lightkube) against a local HTTP server
that answers the API server's list requests from recorded objects (tests/fakes/kube_api.py;
no API server can be installed here: docs/DOMAINS.md says so)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import run_cli
from fakes.kube_api import FakeApiServer

pytest.importorskip("lightkube")

DATA = Path(__file__).parent / "data"


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[FakeApiServer, Path]]:
    items = yaml.safe_load((DATA / "snapshot.yaml").read_text(encoding="utf-8"))["items"]
    with FakeApiServer(items) as server:
        yield server, server.kubeconfig(tmp_path)


def test_a_deployment_that_overflows_beside_what_the_api_lists_fails(api: tuple[FakeApiServer, Path]) -> None:
    server, kubeconfig = api
    run = run_cli(
        "lint", "--cluster", "kube", "--kubeconfig", str(kubeconfig), str(DATA / "new-embeddings.yaml"), "--format", "json"
    )
    assert run.code == 1, run.stdout + run.stderr
    found = json.loads(run.stdout)
    assert any(f["rule"] == "memory-fit" for f in found["findings"])
    assert "/apis/apps/v1/deployments" in server.requests and "/api/v1/nodes" in server.requests


def test_one_that_fits_passes(api: tuple[FakeApiServer, Path]) -> None:
    _, kubeconfig = api
    run = run_cli("lint", "--cluster", "kube", "--kubeconfig", str(kubeconfig), str(DATA / "new-embeddings-small.yaml"))
    assert run.code == 0, run.stdout + run.stderr


def test_audit_lists_every_domain_from_the_api(api: tuple[FakeApiServer, Path]) -> None:
    _, kubeconfig = api
    run = run_cli("audit", "--cluster", "kube", "--kubeconfig", str(kubeconfig), "--format", "json")
    assert run.code == 0, run.stdout + run.stderr
    assert sorted(p["name"] for p in json.loads(run.stdout)["plans"]) == ["shared-nvidia-a100-sxm4-80gb", "trainer"]


def test_an_unreachable_api_server_is_one_line_and_exit_2(tmp_path: Path) -> None:
    server = FakeApiServer([])
    kubeconfig = server.kubeconfig(tmp_path)
    server.stop()  # nothing listens there any more
    run = run_cli("lint", "--cluster", "kube", "--kubeconfig", str(kubeconfig), str(DATA / "new-embeddings-small.yaml"))
    assert run.code == 2
    assert (
        run.stderr.startswith("gpuadmit: --cluster kube: the API server could not be reached") and "Traceback" not in run.stderr
    )


def test_the_webhook_judges_with_the_listed_cluster(api: tuple[FakeApiServer, Path]) -> None:
    import asyncio

    import httpx

    from webhook.app import Webhook, build_app
    from webhook.config import ServeConfig
    from webhook.metrics import Metrics
    from webhook.ruleset import RuleHolder

    _, kubeconfig = api
    settings = ServeConfig(plain_http=True, cluster="kube", kubeconfig=str(kubeconfig))
    metrics = Metrics()
    app = build_app(Webhook(settings, RuleHolder(settings, metrics), metrics, None))
    obj = yaml.safe_load((DATA / "new-embeddings.yaml").read_text(encoding="utf-8"))
    request = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": "prod",
            "name": "embeddings",
            "operation": "CREATE",
            "object": obj,
        },
    }

    async def post() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gpuadmit") as http:
            reply = await http.post("/validate", json=request)
        answer: dict[str, Any] = reply.json()["response"]
        return answer

    answer = asyncio.run(post())
    assert answer["allowed"] is False and "[memory-fit]" in answer["status"]["message"]

"""`gpuadmit serve --cluster kube` keeps its cluster view with a watch: lightkube's asyncio
client lists, then watches from the list's resourceVersion, against a local HTTP server
that answers list and watch requests from recorded objects (tests/fakes/kube_api.py).

Each test changes the fake API server's objects and posts the same AdmissionReview to the
webhook before and after: the verdict follows the cluster without a relist."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from fakes.kube_api import FakeApiServer

pytest.importorskip("lightkube")

from webhook.app import Webhook  # noqa: E402 - after the skip: the app imports the watch
from webhook.config import ServeConfig  # noqa: E402

DATA = Path(__file__).parent / "data"
ITEMS = yaml.safe_load((DATA / "snapshot.yaml").read_text(encoding="utf-8"))["items"]
SMALL = yaml.safe_load((DATA / "new-embeddings-small.yaml").read_text(encoding="utf-8"))
#: A running batch model on the shared A100s: beside chat-llm (48 GB) it leaves no room
#: for the small embeddings (8 GB) on one 80 GB GPU.
BATCH = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "batch", "namespace": "prod", "annotations": {"gpuadmit.dev/gpu-gb": "30"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "batch"}},
        "template": {
            "metadata": {"labels": {"app": "batch"}},
            "spec": {
                "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB-SHARED"},
                "containers": [{"name": "b", "image": "batch:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
            },
        },
    },
}


def review(obj: dict[str, Any], uid: str = "u1") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "apps", "version": "v1", "kind": obj["kind"]},
            "resource": {"group": "apps", "version": "v1", "resource": obj["kind"].lower() + "s"},
            "namespace": obj["metadata"].get("namespace", "prod"),
            "name": obj["metadata"]["name"],
            "operation": "CREATE",
            "dryRun": True,  # judged, never reserved: the same review can be asked again
            "object": obj,
        },
    }


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[FakeApiServer, Path]]:
    with FakeApiServer(ITEMS) as server:
        yield server, server.kubeconfig(tmp_path)


Scenario = Callable[[FakeApiServer, Webhook, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]], Awaitable[None]]


def run(server: FakeApiServer, kubeconfig: Path, scenario: Scenario, **settings: Any) -> None:
    """The webhook with `--cluster kube` and its watch running, and a way to post reviews."""
    import httpx

    from webhook.app import build_app
    from webhook.metrics import Metrics
    from webhook.ruleset import RuleHolder

    config = ServeConfig(plain_http=True, cluster="kube", kubeconfig=str(kubeconfig), **settings)
    metrics = Metrics()
    webhook = Webhook(config, RuleHolder(config, metrics), metrics, None)
    app = build_app(webhook)

    async def main() -> None:
        assert webhook.cluster_watch is not None
        following = asyncio.create_task(webhook.cluster_watch.run())
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gpuadmit") as http:

                async def post(body: dict[str, Any]) -> dict[str, Any]:
                    answer: dict[str, Any] = (await http.post("/validate", json=body)).json()["response"]
                    return answer

                await scenario(server, webhook, post)
        finally:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)

    asyncio.run(main())


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for `condition` (polling; a generous bound only so a broken watch fails the test)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def watching(webhook: Webhook) -> bool:
    watch = webhook.cluster_watch
    return watch is not None and all(s.watching or s.absent for s in watch.kinds.values())


async def seen(webhook: Webhook, server: FakeApiServer) -> None:
    """Until the view has taken what the server holds now (every Deployment change delivered)."""
    watch = webhook.cluster_watch
    assert watch is not None
    version = int(server.resource_version)
    await until(
        lambda: all(int(s.version or 0) >= version or s.absent for s in watch.kinds.values() if s.kind == "Deployment"),
        "the watch delivers the change",
    )
    await watch.settled()


def test_an_added_neighbour_denies_and_its_deletion_allows_again_without_a_relist(api: tuple[FakeApiServer, Path]) -> None:
    server, kubeconfig = api

    async def scenario(server: FakeApiServer, webhook: Webhook, post: Any) -> None:
        await until(lambda: watching(webhook), "every kind watched")
        assert (await post(review(SMALL)))["allowed"] is True
        lists = server.requests.count("/apis/apps/v1/deployments")
        server.add(BATCH)
        await seen(webhook, server)
        denied = await post(review(SMALL))
        assert denied["allowed"] is False and "[memory-fit]" in denied["status"]["message"]
        server.delete("Deployment", "prod", "batch")
        await seen(webhook, server)
        assert (await post(review(SMALL)))["allowed"] is True
        assert server.requests.count("/apis/apps/v1/deployments") == lists, "no list: the watch carried the changes"

    run(server, kubeconfig, scenario)


def test_a_modified_neighbour_changes_the_next_verdict(api: tuple[FakeApiServer, Path]) -> None:
    server, kubeconfig = api

    async def scenario(server: FakeApiServer, webhook: Webhook, post: Any) -> None:
        await until(lambda: watching(webhook), "every kind watched")
        assert (await post(review(SMALL)))["allowed"] is True
        chat = server.get("Deployment", "prod", "chat-llm")
        assert chat is not None
        chat["spec"]["replicas"] = 2  # two vLLM replicas at 0.6 of one GPU: no room left
        server.modify(chat)
        await seen(webhook, server)
        assert (await post(review(SMALL)))["allowed"] is False

    run(server, kubeconfig, scenario)


@pytest.mark.parametrize("how", ["error-event", "http-410"])
def test_an_expired_version_leads_to_a_relist_that_drops_what_was_deleted_meanwhile(tmp_path: Path, how: str) -> None:
    with FakeApiServer([*ITEMS, BATCH], gone_status=how == "http-410") as server:

        async def scenario(server: FakeApiServer, webhook: Webhook, post: Any) -> None:
            await until(lambda: watching(webhook), "every kind watched")
            assert (await post(review(SMALL)))["allowed"] is False  # batch runs
            lists = server.requests.count("/apis/apps/v1/deployments")
            # batch goes while no watch carries it, and the API server forgets that far back.
            server.delete("Deployment", "prod", "batch", quietly=True)
            server.forget_history()
            if how == "error-event":
                server.send_error(410, "Expired", "too old resource version")
            else:
                server.drop_watches()  # the watch reopens from its version: HTTP 410
            watch = webhook.cluster_watch
            assert watch is not None
            await until(lambda: watch.kinds["Deployment"].relists >= 1, "a relist")
            await until(lambda: server.requests.count("/apis/apps/v1/deployments") > lists, "a new list")
            await until(lambda: watching(webhook), "watched again")
            await watch.settled()
            assert (await post(review(SMALL)))["allowed"] is True

        run(server, server.kubeconfig(tmp_path), scenario)


def test_a_dropped_connection_reconnects_and_the_changes_meanwhile_arrive(api: tuple[FakeApiServer, Path]) -> None:
    server, kubeconfig = api

    async def scenario(server: FakeApiServer, webhook: Webhook, post: Any) -> None:
        await until(lambda: watching(webhook), "every kind watched")
        watch = webhook.cluster_watch
        assert watch is not None
        server.drop_watches()
        server.add(BATCH)  # while no watch is open: the reopened one starts before it
        await until(lambda: watch.kinds["Deployment"].reconnects >= 1, "a reconnect")
        await seen(webhook, server)
        assert watch.kinds["Deployment"].relists == 0
        assert (await post(review(SMALL)))["allowed"] is False

    run(server, kubeconfig, scenario)


def test_a_broken_watch_is_said_and_past_the_limit_is_a_failure(api: tuple[FakeApiServer, Path]) -> None:
    server, kubeconfig = api

    async def scenario(server: FakeApiServer, webhook: Webhook, post: Any) -> None:
        await until(lambda: watching(webhook), "every kind watched")
        assert "gpuadmit_cluster_view_behind_seconds 0.0" in webhook.metrics.render()
        server.stop()  # the API server is gone (no replica coordination here: the view alone)
        watch = webhook.cluster_watch
        assert watch is not None
        await until(lambda: watch.problem() is not None, "the watch knows it is broken")
        await until(lambda: "gpuadmit_cluster_view_behind_seconds 0.0" not in webhook.metrics.render(), "the gauge moves")
        answer = await post(review(SMALL))
        assert answer["allowed"] is True
        assert any("judged with the cluster view of" in w for w in answer.get("warnings", [])), answer
        webhook.settings = dataclasses.replace(webhook.settings, cluster_stale_after_s=0.0)
        answer = await post(review(SMALL))
        assert answer["allowed"] is False and answer["status"]["code"] == 500
        assert "cluster view" in answer["status"]["message"] and "over --cluster-stale-after" in answer["status"]["message"]

    run(server, kubeconfig, scenario, coordinate=False)


def test_a_broken_watch_past_the_limit_is_allowed_with_a_warning_under_fail_open(api: tuple[FakeApiServer, Path]) -> None:
    server, kubeconfig = api

    async def scenario(server: FakeApiServer, webhook: Webhook, post: Any) -> None:
        await until(lambda: watching(webhook), "every kind watched")
        server.stop()
        watch = webhook.cluster_watch
        assert watch is not None
        await until(lambda: watch.problem() is not None, "the watch knows it is broken")
        answer = await post(review(copy.deepcopy(SMALL)))
        assert answer["allowed"] is True
        assert any(w.startswith("gpuadmit could not judge") and "cluster view" in w for w in answer["warnings"]), answer
        # Bad input is denied as such, not answered by the failure policy.
        bad = review(
            {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "chat-llm"}, "spec": {"replicas": -2}}
        )
        bad["request"].update(operation="UPDATE", subResource="scale", dryRun=False)
        bad["request"]["resource"] = {"group": "apps", "version": "v1", "resource": "deployments"}
        answer = await post(bad)
        assert answer["allowed"] is False and answer["status"]["code"] == 400, answer
        # So is an object whose count cannot be read, judged without the view.
        unreadable = copy.deepcopy(SMALL)
        unreadable["spec"]["replicas"] = "4"
        answer = await post(review(unreadable))
        assert answer["allowed"] is False and answer["status"]["code"] == 403, answer
        assert "[schema] spec.replicas: expected a whole number ≥ 0, got '4'" in answer["status"]["message"], answer

    run(server, kubeconfig, scenario, fail_open=True, cluster_stale_after_s=0.0, coordinate=False)


async def delivered(webhook: Webhook, added: dict[str, Any]) -> None:
    """Until the view has taken `added` (the object as the server answered it)."""
    watch = webhook.cluster_watch
    assert watch is not None
    version = int(added["metadata"]["resourceVersion"])
    kind = added["kind"]
    await until(lambda: int(watch.kinds[kind].version or 0) >= version, f"the {kind}'s event delivered")
    await watch.settled()


def _owned_by(obj: dict[str, Any], kind: str, name: str, owner: dict[str, Any]) -> dict[str, Any]:
    """A copy of `obj` as `kind` `name`, with `owner` (the object as the API server holds it,
    with its uid) as its controller."""
    made = copy.deepcopy(obj)
    made["kind"] = kind
    made["metadata"] = {
        "name": name,
        "namespace": "prod",
        "uid": f"uid-{name}",
        "ownerReferences": [
            {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
            }
        ],
    }
    return made


def test_pods_a_controller_owns_change_nothing_in_the_view(api: tuple[FakeApiServer, Path]) -> None:
    server, kubeconfig = api

    async def scenario(server: FakeApiServer, webhook: Webhook, post: Any) -> None:
        await until(lambda: watching(webhook), "every kind watched")
        watch = webhook.cluster_watch
        assert watch is not None and webhook.cluster is not None
        deployment = server.add(BATCH)
        replica_set = server.add(_owned_by(BATCH, "ReplicaSet", "batch-7d9f", deployment))
        await delivered(webhook, deployment)
        await delivered(webhook, replica_set)
        assert watch.received == 2, "the Deployment and its ReplicaSet (what the Deployment's pods name)"
        pod = {
            **_owned_by(BATCH, "Pod", "batch-7d9f-x2", replica_set),
            "apiVersion": "v1",
            "spec": BATCH["spec"]["template"]["spec"],
        }
        pod_version = int(server.add(pod)["metadata"]["resourceVersion"])
        await until(lambda: int(watch.kinds["Pod"].version or 0) >= pod_version, "the pod's event delivered")
        await watch.settled()
        assert webhook.cluster.find("Pod", "prod", "batch-7d9f-x2") is None
        assert watch.received == 2, "the pod changed nothing: its ReplicaSet's Deployment counts it"
        assert (await post(review(SMALL)))["allowed"] is False

    run(server, kubeconfig, scenario)


def test_a_pod_whose_controller_is_not_listed_yet_counts_until_it_is(api: tuple[FakeApiServer, Path]) -> None:
    """Kinds are followed apart: a Pod may come before its ReplicaSet. Until the ReplicaSet
    is there, the Pod holds its GPU in the view; then the ReplicaSet counts it. A Pod naming
    a ReplicaSet under another uid stays counted."""
    server, kubeconfig = api
    late = copy.deepcopy(BATCH)
    late["kind"] = "ReplicaSet"
    late["metadata"] = {"name": "late-5c", "namespace": "prod", "uid": "uid-late"}
    late["spec"]["replicas"] = 0  # scaled down: it counts no pod
    late["spec"]["template"]["spec"] = {"containers": [{"name": "b", "image": "batch:1"}]}

    async def scenario(server: FakeApiServer, webhook: Webhook, post: Any) -> None:
        await until(lambda: watching(webhook), "every kind watched")
        watch = webhook.cluster_watch
        assert watch is not None and webhook.cluster is not None
        assert (await post(review(SMALL)))["allowed"] is True
        pod = {**_owned_by(BATCH, "Pod", "late-5c-x1", late), "apiVersion": "v1", "spec": BATCH["spec"]["template"]["spec"]}
        await delivered(webhook, server.add(pod))
        assert webhook.cluster.find("Pod", "prod", "late-5c-x1") is not None, "counted from its own spec"
        assert (await post(review(SMALL)))["allowed"] is False
        await delivered(webhook, server.add(late))
        assert webhook.cluster.find("Pod", "prod", "late-5c-x1") is None, "counted through its ReplicaSet"
        assert (await post(review(SMALL)))["allowed"] is True
        other = copy.deepcopy(pod)
        other["metadata"]["name"] = "late-5c-x2"
        other["metadata"]["ownerReferences"][0]["uid"] = "uid-of-another"
        await delivered(webhook, server.add(other))
        assert webhook.cluster.find("Pod", "prod", "late-5c-x2") is not None
        assert (await post(review(SMALL)))["allowed"] is False

    run(server, kubeconfig, scenario)


def test_a_pod_of_a_controller_the_view_does_not_read_counts_until_it_ends(api: tuple[FakeApiServer, Path]) -> None:
    """A PyTorchJob's pod holds a GPU of the pool: the next review is judged with it; once
    the pod has Succeeded it holds nothing, and the review fits again."""
    from test_owned import owned

    server, kubeconfig = api

    async def scenario(server: FakeApiServer, webhook: Webhook, post: Any) -> None:
        await until(lambda: watching(webhook), "every kind watched")
        watch = webhook.cluster_watch
        assert watch is not None
        assert (await post(review(SMALL)))["allowed"] is True
        pod = owned("Pod", "trainer-master-0", "kubeflow.org/v1", "PyTorchJob", gb="20")
        version = int(server.add(pod)["metadata"]["resourceVersion"])
        await until(lambda: int(watch.kinds["Pod"].version or 0) >= version, "the pod's event delivered")
        await watch.settled()
        assert webhook.cluster is not None and webhook.cluster.find("Pod", "prod", "trainer-master-0") is not None
        denied = await post(review(SMALL))
        assert denied["allowed"] is False and "[memory-fit]" in denied["status"]["message"], denied
        finished = server.get("Pod", "prod", "trainer-master-0")
        assert finished is not None
        finished["status"] = {"phase": "Succeeded"}
        version = int(server.modify(finished)["metadata"]["resourceVersion"])
        await until(lambda: int(watch.kinds["Pod"].version or 0) >= version, "the pod's end delivered")
        await watch.settled()
        assert webhook.cluster.find("Pod", "prod", "trainer-master-0") is None
        assert (await post(review(SMALL)))["allowed"] is True

    run(server, kubeconfig, scenario)


def test_what_a_counted_controller_owns_is_left_out_of_the_view(api: tuple[FakeApiServer, Path]) -> None:
    """A KServe serverless revision's Deployment (counted by the InferenceService its label
    names) and a LeaderWorkerSet's worker StatefulSet (counted by the LeaderWorkerSet, through
    its leader Pod) are left out; a plain Knative revision's Deployment is a neighbour."""
    from test_owned import INFERENCE_SERVICE, LEADER, LWS, owned

    server, kubeconfig = api

    async def scenario(server: FakeApiServer, webhook: Webhook, post: Any) -> None:
        await until(lambda: watching(webhook), "every kind watched")
        watch = webhook.cluster_watch
        assert watch is not None and webhook.cluster is not None
        for counting in (INFERENCE_SERVICE, LWS, LEADER):
            await delivered(webhook, server.add(counting))
        kserve = owned(
            "Deployment",
            "llm-predictor-00001-deployment",
            "serving.knative.dev/v1",
            "Revision",
            labels={"serving.kserve.io/inferenceservice": "llm"},
            gb="30",
        )
        workers = owned("StatefulSet", "vllm-0", "v1", "Pod", labels={"leaderworkerset.sigs.k8s.io/name": "vllm"}, gb="30")
        await delivered(webhook, server.add(kserve))
        await delivered(webhook, server.add(workers))
        assert webhook.cluster.find("Deployment", "prod", "llm-predictor-00001-deployment") is None
        assert webhook.cluster.find("StatefulSet", "prod", "vllm-0") is None
        assert (await post(review(SMALL)))["allowed"] is True
        plain = owned("Deployment", "hello-00001-deployment", "serving.knative.dev/v1", "Revision", gb="30")
        await delivered(webhook, server.add(plain))
        assert (await post(review(SMALL)))["allowed"] is False

    run(server, kubeconfig, scenario)


async def readiness(webhook: Webhook) -> tuple[int, str]:
    """What `/readyz` answers now (its handler reads nothing of the request), the capacity
    source checked as the server does at start."""
    if not webhook.rules.capacity_ready:
        await asyncio.to_thread(webhook.rules.check_capacity)
    response = await webhook.readyz(cast(Any, None))
    return response.status_code, bytes(response.body).decode()


def test_readiness_says_the_view_is_behind_and_past_the_limit_turns_not_ready_until_the_watch_is_back(
    api: tuple[FakeApiServer, Path],
) -> None:
    """A replica that would deny every review for a stale view leaves the Service to the
    replicas that can judge; within the limit, and once the watch is back, it is ready."""
    server, kubeconfig = api

    async def scenario(server: FakeApiServer, webhook: Webhook, post: Any) -> None:
        await until(lambda: watching(webhook), "every kind watched")
        watch = webhook.cluster_watch
        assert watch is not None
        code, text = await readiness(webhook)
        assert code == 200 and "cluster view" not in text, text
        server.drop_watches()
        await until(lambda: watch.problem() is not None, "the watch knows it is broken")
        code, text = await readiness(webhook)
        assert code == 200 and "cluster view" in text and "judged with it, with a warning" in text, text
        webhook.settings = dataclasses.replace(webhook.settings, cluster_stale_after_s=0.0)
        await until(lambda: watch.problem() is not None, "broken again")
        code, text = await readiness(webhook)
        assert code == 503 and text.startswith("not ready: cluster view") and "over --cluster-stale-after" in text, text
        await until(lambda: watch.problem() is None, "the watch reopened")
        code, text = await readiness(webhook)
        assert code == 200 and "cluster view" not in text, text

    run(server, kubeconfig, scenario, coordinate=False)


def test_under_fail_open_a_stale_view_keeps_the_replica_ready_and_says_so(api: tuple[FakeApiServer, Path]) -> None:
    """Its reviews are allowed with a warning: not-ready would turn them into the API
    server's failurePolicy answer."""
    server, kubeconfig = api

    async def scenario(server: FakeApiServer, webhook: Webhook, post: Any) -> None:
        await until(lambda: watching(webhook), "every kind watched")
        watch = webhook.cluster_watch
        assert watch is not None
        server.stop()
        await until(lambda: watch.problem() is not None, "the watch knows it is broken")
        code, text = await readiness(webhook)
        assert code == 200 and "over --cluster-stale-after" in text and "--fail-open" in text, text

    run(server, kubeconfig, scenario, fail_open=True, cluster_stale_after_s=0.0, coordinate=False)


def test_a_change_of_status_alone_does_not_rebuild_the_view(api: tuple[FakeApiServer, Path]) -> None:
    """Controllers write their objects' status all the time (ready replicas, conditions):
    judging never reads it, so the view is rebuilt only for what it reads."""
    server, kubeconfig = api

    async def scenario(server: FakeApiServer, webhook: Webhook, post: Any) -> None:
        await until(lambda: watching(webhook), "every kind watched")
        watch = webhook.cluster_watch
        assert watch is not None
        chat = server.get("Deployment", "prod", "chat-llm")
        assert chat is not None
        chat["status"] = {"replicas": 1, "readyReplicas": 1, "observedGeneration": 1}
        server.modify_status(chat)
        await seen(webhook, server)
        assert watch.received == 0, "a status update is not a change of the view"
        chat = server.get("Deployment", "prod", "chat-llm")
        assert chat is not None
        chat["metadata"].setdefault("annotations", {})["gpuadmit.dev/gpu-gb"] = "30"
        server.modify(chat)
        await seen(webhook, server)
        assert watch.received == 1, "an annotation is read: the view takes it"
        assert webhook.cluster is not None
        taken = webhook.cluster.find("Deployment", "prod", "chat-llm")
        assert taken is not None and taken.data["metadata"]["annotations"]["gpuadmit.dev/gpu-gb"] == "30"

    run(server, kubeconfig, scenario)

"""The `nodes` provider: GPU Feature Discovery labels on Node objects, from a file or the cluster."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from policy.api import Linter
from policy.capacity import cluster
from policy.capacity.file import load_capacity_file
from policy.capacity.nodes import inventory_from_nodes
from policy.plan import ServingPlan
from policy.source import PlanSource

DATA = Path(__file__).parent / "data"


def _capacity(capacity: str, plan: dict[str, Any]) -> list[tuple[str, str]]:
    report = Linter(capacity=capacity).lint_sources([PlanSource(ServingPlan.model_validate(plan), file="plan.yaml")])
    return [(f.severity, f.message) for f in report.findings if f.rule == "capacity-match"]


def test_a_plain_node_is_read_and_nodes_without_gfd_labels_are_skipped() -> None:
    inventory = load_capacity_file(DATA / "nodes-plain.json")
    assert inventory.source == "nodes" and inventory.error == ""
    [host] = inventory.hosts
    assert host.name == "gpu-node-a" and host.mig_pool is None
    assert [(d.id, d.index, d.product, d.memory_gb, d.mig_mode) for d in host.devices] == [
        ("gpu0", 0, "NVIDIA-A100-SXM4-40GB", 40.0, False),
        ("gpu1", 1, "NVIDIA-A100-SXM4-40GB", 40.0, False),
    ]


def test_a_mig_single_strategy_node_is_read_as_mig_gpus_with_a_pool() -> None:
    [host] = load_capacity_file(DATA / "nodes-mig-single.json").hosts
    # 14 1g.5gb devices, 7 per A100-40GB: two GPUs, whole-GPU memory from the catalog.
    assert [(d.product, d.memory_gb, d.mig_mode) for d in host.devices] == [
        ("NVIDIA-A100-SXM4-40GB", 40.0, True),
        ("NVIDIA-A100-SXM4-40GB", 40.0, True),
    ]
    assert host.mig_pool is not None
    assert {p: (e.count, e.memory_gb) for p, e in host.mig_pool.items()} == {"1g.5gb": (14, 4.75)}


def test_a_mig_mixed_strategy_node_in_yaml_is_read_with_its_profiles() -> None:
    [host] = load_capacity_file(DATA / "nodes-mig-mixed.yaml").hosts
    assert [(d.product, d.memory_gb) for d in host.devices] == [("NVIDIA-A100-SXM4-80GB", 80.0)] * 2
    assert host.mig_pool is not None
    assert {p: (e.count, e.memory_gb) for p, e in host.mig_pool.items()} == {"3g.40gb": (2, 39.25), "1g.10gb": (7, 9.5)}


def test_a_plan_declaring_80_gib_on_a_40960_mib_node_gets_capacity_match() -> None:
    plan = {"gpus": [{"id": "gpu0", "memory_gb": 80}], "models": [{"name": "a", "gpu": "gpu0", "gpu_gb": 30}]}
    assert _capacity(str(DATA / "nodes-plain.json"), plan) == [
        ("error", "gpu0: declares 80.0 GiB, but index 0 NVIDIA-A100-SXM4-40GB has 40.0 GiB")
    ]


def test_a_plan_matching_the_node_passes() -> None:
    plan = {
        "metadata": {"name": "gpu-node-a"},
        "gpus": [{"id": "gpu0", "product": "A100-40GB"}, {"id": "gpu1", "product": "NVIDIA A100-SXM4-40GB"}],
        "models": [{"name": "a", "gpu": "gpu0", "gpu_gb": 30}],
    }
    assert _capacity(str(DATA / "nodes-plain.json"), plan) == []


def test_a_third_gpu_on_a_two_gpu_node_does_not_exist() -> None:
    plan = {"gpus": [{"id": "a"}, {"id": "b"}, {"id": "c"}], "models": [{"name": "m", "gpu": "c", "gpu_gb": 1}]}
    assert _capacity(str(DATA / "nodes-plain.json"), plan) == [
        (
            "error",
            "c: declared, but gpu-node-a has 2 GPUs ("
            + str(DATA / "nodes-plain.json")
            + ") and none matches it by uuid, index, id or position",
        )
    ]


def test_mixed_mig_slices_are_compared_per_node() -> None:
    mixed = str(DATA / "nodes-mig-mixed.yaml")
    same = {
        "gpus": [
            {"id": "gpu0", "product": "A100-80GB", "sharing": "mig", "mig": ["1g.10gb"] * 7},
            {"id": "gpu1", "product": "A100-80GB", "sharing": "mig", "mig": ["3g.40gb", "3g.40gb"]},
        ],
        "models": [{"name": "a", "gpu": "gpu1:0", "gpu_gb": 20}],
    }
    assert _capacity(mixed, same) == []
    other = {
        "gpus": [{"id": "gpu0", "product": "A100-80GB", "sharing": "mig", "mig": ["7g.80gb"]}],
        "models": [{"name": "a", "gpu": "gpu0:0", "gpu_gb": 20}],
    }
    assert _capacity(mixed, other) == [
        (
            "error",
            "gpu0: declares MIG 7g.80gb, but the device reports 1g.10gb ×7, 3g.40gb ×2 on node mig-mixed-node "
            "(labels do not say which GPU holds which)",
        )
    ]


def test_single_strategy_slices_get_the_labelled_memory() -> None:
    plan = {
        "gpus": [
            {"id": "gpu0", "product": "A100-40GB", "sharing": "mig", "mig": ["1g.5gb"] * 7},
            {"id": "gpu1", "product": "A100-40GB", "sharing": "mig", "mig": ["1g.5gb"] * 7},
        ],
        "models": [{"name": "a", "gpu": "gpu0:0", "gpu_gb": 4.5}],
    }
    report = Linter(capacity=str(DATA / "nodes-mig-single.json")).lint_sources(
        [PlanSource(ServingPlan.model_validate(plan), file="plan.yaml")]
    )
    assert [f.message for f in report.findings if f.rule in {"capacity-match", "memory-fit"}] == [
        "gpu0:0: 5.0 GiB committed > 4.5 GiB usable (4.8 GiB − 5 % headroom); largest: a 5.0 GiB"
    ]


def test_a_malformed_label_is_a_reason_not_a_crash() -> None:
    node = {
        "kind": "Node",
        "metadata": {"name": "n", "labels": {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.memory": "lots"}},
    }
    inventory = inventory_from_nodes([node], "nodes.json")
    assert inventory.error == "node n: label nvidia.com/gpu.memory='lots' is not a whole number"


def test_nodes_without_gfd_labels_cannot_verify_anything(tmp_path: Path) -> None:
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps({"kind": "List", "items": [{"kind": "Node", "metadata": {"name": "cpu"}}]}))
    plan = {"gpus": [{"id": "gpu0", "memory_gb": 24}], "models": []}
    assert _capacity(str(path), plan) == [
        (
            "warning",
            f"gpu0: capacity could not be verified: no node in {path} carries GPU Feature Discovery labels (nvidia.com/gpu.product)",
        )
    ]


def test_several_different_nodes_need_a_plan_named_after_one(tmp_path: Path) -> None:
    nodes = json.loads((DATA / "nodes-plain.json").read_text())
    l4 = {
        "kind": "Node",
        "metadata": {
            "name": "gpu-node-b",
            "labels": {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.memory": "23034", "nvidia.com/gpu.count": "1"},
        },
    }
    nodes["items"].append(l4)
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps(nodes))
    named = {"metadata": {"name": "gpu-node-b"}, "gpus": [{"id": "gpu0", "memory_gb": 40}], "models": []}
    assert _capacity(str(path), named) == [("error", "gpu0: declares 40.0 GiB, but index 0 NVIDIA-L4 has 22.5 GiB")]
    unnamed = {"gpus": [{"id": "gpu0", "memory_gb": 40}], "models": []}
    assert _capacity(str(path), unnamed) == [
        (
            "warning",
            f"gpu0: capacity could not be verified: 2 GPU nodes with different GPUs in {path} and none is named "
            "'plan'; name the plan (metadata.name) after its node",
        )
    ]


# --- in-cluster -----------------------------------------------------------------------------


class _ApiServer(BaseHTTPRequestHandler):
    body: bytes = b""
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def api_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A TLS API server on localhost that lists the plain node; yields the service-account dir."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    items = json.loads((DATA / "nodes-plain.json").read_text())["items"][:1]
    _ApiServer.body = json.dumps({"kind": "NodeList", "apiVersion": "v1", "items": items}).encode()
    _ApiServer.seen = []
    server = HTTPServer(("127.0.0.1", 0), _ApiServer)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("secret-token\n")
    ca.cert_pem.write_to_path(str(account / "ca.crt"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.server_address[1]))
    yield account
    server.shutdown()
    server.server_close()


def test_in_cluster_nodes_are_listed_with_the_service_account_token(api_server: Path) -> None:
    inventory = cluster.read_inventory(service_account=api_server)
    assert inventory.error == ""
    assert [(h.name, len(h.devices)) for h in inventory.hosts] == [("gpu-node-a", 2)]
    assert _ApiServer.seen == [("/api/v1/nodes?labelSelector=nvidia.com%2Fgpu.product", "Bearer secret-token")]


def test_outside_a_pod_the_cluster_cannot_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    plan = {"gpus": [{"id": "gpu0", "memory_gb": 80}], "models": []}
    assert _capacity("nodes", plan) == [
        ("warning", "gpu0: capacity could not be verified: not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)")
    ]

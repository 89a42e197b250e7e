"""Helpers for the webhook tests: a real `gpuadmit serve` process over HTTPS with a
throwaway CA made here, and AdmissionReviews as the API server writes them."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import yaml
from fakes.admission import review as review  # the AdmissionReview builder, where every test folder reaches it
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
#: How long a server may take to start or react; a bound on polling, not a wait.
PATIENCE_S = 60.0


@dataclass
class Certs:
    ca: trustme.CA
    folder: Path
    cert: Path
    key: Path
    ca_file: Path

    def issue(self, common_name: str = "gpuadmit") -> None:
        """Replace the served certificate and key (as cert-manager does on renewal)."""
        leaf = self.ca.issue_cert("127.0.0.1", "localhost", common_name=common_name)
        tmp_cert, tmp_key = self.folder / "tls.crt.new", self.folder / "tls.key.new"
        tmp_cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        tmp_key.write_bytes(leaf.private_key_pem.bytes())
        os.replace(tmp_key, self.key)
        os.replace(tmp_cert, self.cert)


def make_certs(folder: Path) -> Certs:
    ca = trustme.CA()
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    certs = Certs(ca, folder, folder / "tls.crt", folder / "tls.key", ca_file)
    certs.issue("gpuadmit-1")
    return certs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def poll(check: Any, what: str, patience: float = PATIENCE_S) -> Any:
    """Call `check` until it returns something truthy; fail after `patience` seconds."""
    give_up = time.monotonic() + patience
    delay = 0.01
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > give_up:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(delay)  # back-off between polls, not a wait for the server
        delay = min(delay * 2, 0.2)


@dataclass
class Server:
    """A `gpuadmit serve` subprocess and an HTTPS client that trusts its CA."""

    process: subprocess.Popen[bytes]
    port: int
    certs: Certs
    log: Path
    client_cert: Any = None
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.certs.ca_file))
        if self.client_cert is not None:
            self.client_cert.configure_cert(context)
        client = httpx.Client(base_url=self.url, verify=context, timeout=30)
        self._clients.append(client)
        return client

    def review(self, review: dict[str, Any]) -> dict[str, Any]:
        response = self.client().post("/validate", json=review)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def healthy(self) -> bool:
        try:
            return self.client().get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def ready(self) -> bool:
        try:
            return self.client().get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def metric(self, name: str) -> float:
        """The value of one sample, e.g. `gpuadmit_reviews_in_flight` or
        `gpuadmit_reloads_total{what="tls",result="ok"}` (labels in any order; 0 when absent)."""
        wanted = next(iter(text_string_to_metric_families(f"{name} 0\n"))).samples[0]
        for family in text_string_to_metric_families(self.client().get("/metrics").text):
            for sample in family.samples:
                if sample.name == wanted.name and sample.labels == wanted.labels:
                    return float(sample.value)
        return 0.0

    def logs(self) -> list[dict[str, Any]]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def close_clients(self) -> None:
        """Close idle keep-alive connections (the API server's Go client answers a TLS
        close_notify by itself; an idle Python client does not, and would hold a drain)."""
        for client in self._clients:
            client.close()
        self._clients.clear()

    def stop(self) -> None:
        self.close_clients()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(tmp: Path, *args: str, certs: Certs | None = None, ready: bool = True) -> Server:
    certs = certs or make_certs(tmp)
    port = free_port()
    log = tmp / f"serve-{port}.log"
    command = [
        sys.executable,
        "-m",
        "policy.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--tls-cert",
        str(certs.cert),
        "--tls-key",
        str(certs.key),
        "--tls-reload-interval",
        "0.1",
        "--watch-interval",
        "0",
        *args,
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
    server = Server(process, port, certs, log)
    if ready:

        def up() -> bool:
            if process.poll() is not None:
                pytest.fail(f"gpuadmit serve exited with {process.returncode}:\n{log.read_text()}")
            return server.healthy() and server.ready()

        poll(up, "gpuadmit serve to become ready")
    return server


# -- building reviews -------------------------------------------------------------------


def sample_plan(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SAMPLES / name).read_text(encoding="utf-8"))
    return data


def serving_plan(spec: dict[str, Any], name: str = "node-a", namespace: str = "team-a") -> dict[str, Any]:
    """A plan as the ServingPlan custom resource the API server sends."""
    body = {k: v for k, v in spec.items() if k not in ("apiVersion", "kind", "metadata")}
    return {
        "apiVersion": "gpuadmit.dev/v1alpha1",
        "kind": "ServingPlan",
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "generation": 1},
        "spec": body,
    }

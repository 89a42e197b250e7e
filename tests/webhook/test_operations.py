"""Running it: certificate rotation, rule reloads, draining on SIGTERM, client certificates."""

from __future__ import annotations

import json
import signal
import socket
import ssl
from pathlib import Path

import httpx
import pytest
from webhook_support import Server, make_certs, poll, review, sample_plan, serving_plan, start_server

FORBIDDEN_RULE = """\
id: no-forbidden-name
title: No model is called forbidden
severity: error
scope: model
description: A rule added at run time.
remediation: rename {model.name}
validations:
  - expression: 'model.name != "forbidden"'
    message: "{model.name}: this name is forbidden"
"""
BROKEN_RULE = FORBIDDEN_RULE.replace("no-forbidden-name", "broken-rule").replace("model.name != ", "model.name !=== ")


def served_common_name(server: Server) -> str:
    """The CN of the certificate a new TLS connection is shown."""
    context = ssl.create_default_context(cafile=str(server.certs.ca_file))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            cert = tls.getpeercert()
    subject = dict(pair[0] for pair in cert["subject"])
    return str(subject["commonName"])


def forbidden_plan() -> dict[str, object]:
    spec = sample_plan("seed-demo-safe.yaml")
    spec["models"][3]["name"] = "forbidden"
    return serving_plan(spec)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


def test_rotated_certificate_is_served_to_new_connections(tmp: Path) -> None:
    server = start_server(tmp)
    try:
        assert served_common_name(server) == "gpuadmit-1"
        server.certs.issue("gpuadmit-2")
        poll(lambda: served_common_name(server) == "gpuadmit-2", "the rotated certificate")
        assert server.metric('gpuadmit_reloads_total{what="tls",result="ok"}') >= 1
        assert server.review(review(serving_plan(sample_plan("seed-demo-safe.yaml"))))["response"]["allowed"] is True
    finally:
        server.stop()


def test_sighup_reloads_rules_and_keeps_them_when_the_new_set_is_broken(tmp: Path) -> None:
    rules = tmp / "rules"
    rules.mkdir()
    server = start_server(tmp, "--rules", str(rules))
    try:
        assert server.review(review(forbidden_plan()))["response"]["allowed"] is True
        (rules / "no-forbidden-name.yaml").write_text(FORBIDDEN_RULE, encoding="utf-8")
        server.process.send_signal(signal.SIGHUP)
        poll(lambda: server.metric('gpuadmit_reloads_total{what="rules",result="ok"}') == 1, "the rules reload")
        denied = server.review(review(forbidden_plan()))["response"]
        assert denied["allowed"] is False
        assert "[no-forbidden-name] forbidden: this name is forbidden" in denied["status"]["message"]

        (rules / "broken-rule.yaml").write_text(BROKEN_RULE, encoding="utf-8")
        server.process.send_signal(signal.SIGHUP)
        poll(lambda: server.metric('gpuadmit_reloads_total{what="rules",result="failed"}') == 1, "the failed reload")
        still = server.review(review(forbidden_plan()))["response"]
        assert still["allowed"] is False
        assert "[no-forbidden-name]" in still["status"]["message"]
        assert server.healthy() and server.ready()
        failures = [e for e in server.logs() if e.get("event") == "rules-reload" and e["level"] == "error"]
        assert "broken-rule.yaml" in failures[0]["error"]
    finally:
        server.stop()


def test_rules_are_reloaded_when_the_rule_folder_changes(tmp: Path) -> None:
    rules = tmp / "rules"
    rules.mkdir()
    server = start_server(tmp, "--rules", str(rules), "--watch-interval", "0.1")
    try:
        (rules / "no-forbidden-name.yaml").write_text(FORBIDDEN_RULE, encoding="utf-8")
        poll(lambda: server.metric('gpuadmit_reloads_total{what="rules",result="ok"}') == 1, "the rules reload")
        assert server.review(review(forbidden_plan()))["response"]["allowed"] is False
    finally:
        server.stop()


def test_sigterm_drains_a_review_in_flight(tmp: Path) -> None:
    # The deadline runs from the first byte: room for the pause in the middle of the body.
    server = start_server(tmp, "--deadline", "25")
    body = json.dumps(review(serving_plan(sample_plan("seed-demo.yaml")), uid="drain-1")).encode()
    half = len(body) // 2
    context = ssl.create_default_context(cafile=str(server.certs.ca_file))
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    conn = context.wrap_socket(raw, server_hostname="127.0.0.1")
    try:
        head = (
            f"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        conn.sendall(head.encode() + body[:half])
        poll(lambda: server.metric("gpuadmit_reviews_in_flight") == 1, "the review to be in flight")
        server.close_clients()
        server.process.send_signal(signal.SIGTERM)
        poll(lambda: not _accepts(server), "the server to stop accepting connections")
        conn.sendall(body[half:])
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < _length(reply):
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
        conn.close()
        status, _, rest = reply.partition(b"\r\n")
        assert status == b"HTTP/1.1 200 OK"
        answer = json.loads(rest.split(b"\r\n\r\n", 1)[1])["response"]
        assert answer["uid"] == "drain-1"
        assert answer["allowed"] is False
        # A drain ends in a clean exit; a process killed by the signal did not drain.
        assert server.process.wait(timeout=30) == 0
    finally:
        conn.close()
        server.stop()


def _accepts(server: Server) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5):
            return True
    except OSError:
        return False


def _length(reply: bytes) -> int:
    for line in reply.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_client_certificates_are_required_when_a_client_ca_is_given(tmp: Path) -> None:
    certs = make_certs(tmp)
    health_port = _free_port()
    server = start_server(tmp, "--client-ca", str(certs.ca_file), "--health-port", str(health_port), certs=certs, ready=False)
    try:

        def plain_ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{health_port}/readyz").status_code == 200
            except httpx.TransportError:
                return False

        poll(plain_ready, "the plain health port")
        with pytest.raises(httpx.TransportError):
            server.client().post("/validate", json=review(serving_plan(sample_plan("seed-demo.yaml"))))
        server.client_cert = certs.ca.issue_cert("kube-apiserver")
        answer = server.review(review(serving_plan(sample_plan("seed-demo-safe.yaml"))))
        assert answer["response"]["allowed"] is True
        assert httpx.get(f"http://127.0.0.1:{health_port}/metrics").text.startswith("# HELP gpuadmit_reviews_total")
        assert httpx.post(f"http://127.0.0.1:{health_port}/validate", json={}).status_code == 404
    finally:
        server.stop()


def _free_port() -> int:
    from webhook_support import free_port

    return free_port()


def test_rules_that_do_not_compile_stop_the_server_at_start(tmp: Path) -> None:
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "broken-rule.yaml").write_text(BROKEN_RULE, encoding="utf-8")
    server = start_server(tmp, "--rules", str(rules), ready=False)
    assert server.process.wait(timeout=60) == 2
    assert "broken-rule.yaml" in server.log.read_text(encoding="utf-8")

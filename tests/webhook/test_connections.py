"""Connection limits of a real `gpuadmit serve` over real TLS on loopback: idle
connections, unfinished handshakes, slow headers and bodies, the connection cap, and a
large review that must not stall the health endpoint. Every loop is bounded in count and
in time; no test asserts how long anything took."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from webhook_support import Server, poll, review, serving_plan, start_server

#: Bounds on polling (not waits for the server): generous for a loaded machine.
PATIENCE_S = 60.0


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def tls_connection(server: Server) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(server.certs.ca_file))
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE_S)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed `sock` (EOF or a reset); False while it is open."""
    sock.settimeout(0.0)
    try:
        return sock.recv(1) == b""
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        return True


def read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded in time)."""
    sock.settimeout(PATIENCE_S)
    data = b""
    try:
        while len(data) < 1_000_000:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    return data


@pytest.fixture()
def limited(tmp_path: Path) -> Iterator[Server]:
    server = start_server(
        tmp_path, "--idle-timeout", "2", "--deadline", "2", "--tls-handshake-timeout", "1", "--max-connections", "1100"
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc")
def test_a_thousand_idle_tls_connections_are_closed_and_memory_returns(limited: Server) -> None:
    pid = limited.process.pid
    assert limited.review(review(serving_plan({"gpus": [], "models": []})))["response"]["allowed"] is True
    limited.close_clients()
    baseline = rss_mib(pid)
    sockets = [tls_connection(limited) for _ in range(1000)]  # handshakes done, no request ever
    try:
        held = rss_mib(pid) - baseline
        open_ = set(range(len(sockets)))

        def all_closed() -> bool:
            for n in list(open_):
                if closed_by_server(sockets[n]):
                    open_.discard(n)
                    sockets[n].close()  # as a client does on EOF
            return not open_

        poll(all_closed, "the server to close 1,000 idle connections", PATIENCE_S)
        # The closed connections' memory goes back (the server collects and trims once many closed).
        poll(lambda: rss_mib(pid) - baseline < max(16.0, held * 0.25), "resident memory to return near its baseline", 30)
    finally:
        for sock in sockets:
            sock.close()
    assert held > 16, f"1,000 open TLS connections should have cost memory; {held:.0f} MiB measured"
    assert limited.healthy()


def test_a_tls_handshake_that_never_finishes_is_closed(limited: Server) -> None:
    raw = socket.create_connection(("127.0.0.1", limited.port), timeout=PATIENCE_S)
    try:
        raw.settimeout(PATIENCE_S)  # the server must close it long before this
        assert raw.recv(1) == b""
    except ConnectionResetError:
        pass
    finally:
        raw.close()


def healthz_over(sock: ssl.SSLSocket) -> bool:
    """True when the server answers /healthz on `sock` (keeping it open); False when it closed it."""
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(PATIENCE_S)
        data = b""
        while b"\r\n\r\nok\n" not in data and len(data) < 4096:  # the whole answer, so the next starts clean
            chunk = sock.recv(4096)
            if not chunk:
                return False
            data += chunk
        return data.startswith(b"HTTP/1.1 200")
    except (ConnectionError, ssl.SSLError, OSError):
        return False


def test_connections_beyond_the_cap_are_closed(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--max-connections", "4", "--idle-timeout", "30")
    accepted: list[ssl.SSLSocket] = []
    try:
        server.close_clients()
        refused = False
        for _ in range(10):  # the 5th open connection at the latest is one too many
            sock = tls_connection(server)
            if healthz_over(sock):
                accepted.append(sock)
                continue
            sock.close()
            refused = True
            break
        assert refused, f"{len(accepted)} connections open and none refused"
        assert 1 <= len(accepted) <= 4
        assert all(healthz_over(sock) for sock in accepted), "connections within the cap keep working"
        accepted.pop().close()
        # A slot is free again: a review is answered.
        body = json.dumps(review(serving_plan({"gpus": [], "models": []}), uid="after-cap")).encode()

        def answered() -> Any:
            sock = tls_connection(server)
            try:
                sock.sendall(
                    b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                return read_response(sock)
            finally:
                sock.close()

        reply = poll(answered, "a review once a connection slot is free")
        assert reply.startswith(b"HTTP/1.1 200")
        assert b'"uid":"after-cap"' in reply
    finally:
        for sock in accepted:
            sock.close()
        server.stop()


def test_a_body_sent_one_byte_a_second_is_cut_at_the_deadline(limited: Server) -> None:
    body = json.dumps(review(serving_plan({"gpus": [], "models": []}))).encode()
    sock = tls_connection(limited)
    sent = 0
    try:
        sock.sendall(
            b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        for byte in body[:60]:  # at most 60 s; the 2 s deadline cuts it long before
            try:
                sock.sendall(bytes([byte]))
            except (ConnectionError, ssl.SSLError, OSError):
                break
            sent += 1
            sock.settimeout(1.0)  # one byte a second: wait for an answer between bytes
            try:
                first = sock.recv(65536)
            except (TimeoutError, socket.timeout, ssl.SSLWantReadError):
                continue
            except (ConnectionError, ssl.SSLError, OSError):
                first = b""
            reply = first + (read_response(sock) if first else b"")
            break
        else:
            pytest.fail("the slow body was never cut")
    finally:
        sock.close()
    assert sent < 60
    if reply:  # a well-formed answer, then the connection closed (read_response saw EOF)
        head, _, text = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b"connection: close" in head.lower()
        assert b"request body not received within the 2 s deadline" in text
    assert limited.healthy()


def test_headers_sent_one_byte_at_a_time_lose_the_connection(limited: Server) -> None:
    request = b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 200
    sock = tls_connection(limited)
    sent = 0
    try:
        for byte in request:  # at most ~100 s; the 2 s deadline (+1 s grace) cuts it long before
            try:
                sock.sendall(bytes([byte]))
            except (ConnectionError, ssl.SSLError, OSError):
                break
            sent += 1
            sock.settimeout(0.5)
            try:
                if sock.recv(1) == b"":
                    break
            except (TimeoutError, socket.timeout, ssl.SSLWantReadError):
                continue
            except (ConnectionError, ssl.SSLError, OSError):
                break
        else:
            pytest.fail("headers that never end kept their connection")
    finally:
        sock.close()
    assert sent < len(request)


def many_models_review(n: int) -> dict[str, Any]:
    models = [
        {
            "name": f"model-{m:05d}",
            "framework": "pytorch",
            "gpu": "gpu0",
            "gpu_gb": 0.1,
            "latency_critical": m % 3 == 0,
            "priority": 1 if m % 3 == 0 else 3,
        }
        for m in range(n)
    ]
    return review(serving_plan({"gpus": [{"id": "gpu0", "memory_gb": 4096}], "models": models}), uid="ten-thousand")


def test_ten_thousand_models_on_one_gpu_are_judged_while_healthz_answers(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--deadline", "20")
    try:
        request = many_models_review(10_000)
        result: dict[str, Any] = {}

        def send() -> None:
            result["answer"] = server.review(request)

        sender = threading.Thread(target=send)
        health_during = 0
        sender.start()
        try:
            for _ in range(2000):  # bounded: the review ends the loop long before
                if not sender.is_alive():
                    break
                if server.healthy():
                    health_during += 1 if sender.is_alive() else 0
                time.sleep(0.01)  # pacing between probes
        finally:
            sender.join(PATIENCE_S)
        answer = result["answer"]["response"]
        assert answer["uid"] == "ten-thousand"
        # A verdict, not the deadline's answer: judged (and denied: 10,000 CUDA contexts do not fit).
        assert answer["allowed"] is False and answer["status"]["code"] == 403, answer.get("status")
        assert answer["status"]["message"].startswith("gpuadmit: ServingPlan team-a/node-a is unsafe")
        assert health_during > 0, "/healthz did not answer while the review was judged"
    finally:
        server.stop()

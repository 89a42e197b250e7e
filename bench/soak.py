"""Load soak: `gpuadmit serve` for a fixed time at a fixed request rate, every answer checked.

    python bench/soak.py                          # 60 s at 200 req/s after a 5 s warm-up
    python bench/soak.py --seconds 600 --rate 150

The server is a real `gpuadmit serve` subprocess, TLS on 127.0.0.1. The load comes from a
second process (this script with `--client`), open loop: request i is due at
start + i / rate whatever happened to the ones before, so a slow server shows as latency
(measured from when the request was due, not from when it could be sent), never as fewer
requests. The mix is what an API server sends plus what it should never send: unsafe and
safe 32-model ServingPlans (CREATE, UPDATE, dryRun), labelled and unlabelled ConfigMaps,
DELETEs, kinds gpuadmit does not judge, reviews without a uid and malformed bodies. Every
answer is checked (HTTP status, a well-formed AdmissionReview, the uid echoed, the
expected allowed/denied); anything else counts as an error. The server's resident memory
is read from /proc every second. Passes with zero errors and under 10 % memory growth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe  # noqa: E402
from bench.webhook_bench import ROOT, Result, free_port, make_plan, make_reviews, make_tls, rss_mib, serve_command, wait_healthy  # noqa: E402

#: Replaced by a fresh uid in every request, so an answer can only match its own request.
UID_MARK = "soak-uid-placeholder"
MAX_GROWTH = 0.10
#: Seconds: one answer, and the drain of answers still owed once the last request is sent.
ANSWER_TIMEOUT = 10.0
DRAIN_TIMEOUT = 15.0
#: Seconds a kept-alive connection may sit idle before the client retires it (server: 30).
IDLE_LIMIT = 15.0


# -- the mix ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What a correct answer looks like: HTTP status and, for 200, allowed and status.code."""

    status: int = 200
    allowed: bool | None = None
    code: int | None = None
    uid_echoed: bool = True


@dataclass
class Case:
    category: str
    body: bytes  # holds UID_MARK where the uid goes, or is not a review at all
    expect: Expect


def _review(
    operation: str,
    kind: dict[str, str],
    obj: Any,
    *,
    old: Any = None,
    dry_run: bool = False,
    uid: str | None = UID_MARK,
    name: str = "x",
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "kind": kind,
        "resource": {"group": kind["group"], "version": kind["version"], "resource": kind["kind"].lower() + "s"},
        "name": name,
        "namespace": "soak",
        "operation": operation,
        "userInfo": {"username": "soak"},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
    }
    if uid is not None:
        request["uid"] = uid
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


PLAN_KIND = {"group": "gpuadmit.dev", "version": "v1alpha1", "kind": "ServingPlan"}
CONFIGMAP_KIND = {"group": "", "version": "v1", "kind": "ConfigMap"}


def make_cases(plans: int, seed: int = 11) -> dict[str, list[Case]]:
    """Every category of the mix with its payloads; ServingPlan i is unsafe when i % 3 == 0."""
    rng = random.Random(seed)
    denied, allowed = Expect(allowed=False, code=403), Expect(allowed=True)
    cases: dict[str, list[Case]] = {
        k: []
        for k in (
            "plan",
            "plan-update",
            "plan-dry-run",
            "configmap",
            "configmap-unlabelled",
            "delete",
            "terminating",
            "other-kind",
            "no-uid",
            "no-object",
            "malformed",
        )
    }
    for i, (uid, body) in enumerate(make_reviews(plans)):
        marked = body.replace(f'"uid": "{uid}"'.encode(), f'"uid": "{UID_MARK}"'.encode(), 1)
        cases["plan"].append(Case("plan", marked, denied if i % 3 == 0 else allowed))
    for i in range(min(plans, 60)):
        new, old = make_plan(i, rng), make_plan(i + 1, rng)
        expect = denied if i % 3 == 0 else allowed
        cases["plan-update"].append(
            Case("plan-update", json.dumps(_review("UPDATE", PLAN_KIND, new, old=old, name=f"plan-{i}")).encode(), expect)
        )
        cases["plan-dry-run"].append(
            Case("plan-dry-run", json.dumps(_review("CREATE", PLAN_KIND, new, dry_run=True, name=f"plan-{i}")).encode(), expect)
        )
        cases["delete"].append(
            Case("delete", json.dumps(_review("DELETE", PLAN_KIND, None, old=new, name=f"plan-{i}")).encode(), allowed)
        )
        # Finalizers coming off an object being deleted: allowed, unsafe or not.
        leaving = {**new, "metadata": {**new.get("metadata", {}), "deletionTimestamp": "2026-01-01T00:00:00Z"}}
        cases["terminating"].append(
            Case(
                "terminating", json.dumps(_review("UPDATE", PLAN_KIND, leaving, old=leaving, name=f"plan-{i}")).encode(), allowed
            )
        )
    either = Expect()  # either verdict, but a well-formed one
    for sample, verdict in (
        ("seed-demo.yaml", denied),
        ("seed-demo-safe.yaml", allowed),
        ("fleet-mps.yaml", either),
        ("mig-a100.yaml", either),
    ):
        text = (ROOT / "samples" / sample).read_text()
        for labelled in (True, False):
            labels = {"gpuadmit.dev/plan": "true"} if labelled else {"app": "serving"}
            obj = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "serving", "namespace": "soak", "labels": labels},
                "data": {"plan.yaml": text},
            }
            category = "configmap" if labelled else "configmap-unlabelled"
            want = verdict if labelled else allowed
            cases[category].append(
                Case(category, json.dumps(_review("CREATE", CONFIGMAP_KIND, obj, name="serving")).encode(), want)
            )
    for i in range(20):
        kind = {"group": "example.com", "version": "v1", "kind": f"Widget{i}"}
        obj = {"apiVersion": "example.com/v1", "kind": f"Widget{i}", "metadata": {"name": f"w{i}"}, "spec": {"size": i}}
        cases["other-kind"].append(Case("other-kind", json.dumps(_review("CREATE", kind, obj, name=f"w{i}")).encode(), allowed))
    plan = make_plan(0, rng)
    cases["no-uid"].append(
        Case(
            "no-uid",
            json.dumps(_review("CREATE", PLAN_KIND, plan, uid=None)).encode(),
            Expect(allowed=False, code=400, uid_echoed=False),
        )
    )
    malformed_review = Expect(allowed=False, code=400)  # denied in a review, whatever the mode
    cases["no-object"].append(Case("no-object", json.dumps(_review("CREATE", PLAN_KIND, {})).encode(), malformed_review))
    cases["no-object"].append(Case("no-object", json.dumps(_review("", PLAN_KIND, plan)).encode(), malformed_review))
    bad = Expect(status=400, uid_echoed=False)
    valid = json.dumps(_review("CREATE", PLAN_KIND, plan)).encode()
    for body in (
        b"{not json",
        valid[: len(valid) // 2],  # truncated
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}}).encode(),
        json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
    ):
        cases["malformed"].append(Case("malformed", body, bad))
    return cases


#: Share of each category in the mix, per 100 requests.
WEIGHTS = {
    "plan": 50,
    "plan-update": 8,
    "plan-dry-run": 8,
    "configmap": 8,
    "configmap-unlabelled": 3,
    "delete": 6,
    "terminating": 2,
    "other-kind": 5,
    "no-uid": 2,
    "no-object": 2,
    "malformed": 6,
}


# -- the client (its own process) ---------------------------------------------------------


@dataclass
class Tally:
    sent: int = 0
    answered: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    by_category: Counter[str] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def error(self, why: str, detail: str) -> None:
        self.errors += 1
        self.error_kinds[why] += 1
        if len(self.examples) < 10:
            self.examples.append(f"{why}: {detail[:300]}")


def check(case: Case, uid: str, status: int, payload: bytes) -> str | None:
    """Why this answer is wrong, or None when it is what the case expects."""
    want = case.expect
    if status != want.status:
        return f"HTTP {status}, expected {want.status}"
    if want.status != 200:
        return None
    try:
        answer = json.loads(payload)
        response = answer["response"]
    except (ValueError, KeyError, TypeError):
        return "not an AdmissionReview"
    if (
        answer.get("apiVersion") != "admission.k8s.io/v1"
        or answer.get("kind") != "AdmissionReview"
        or not isinstance(response, dict)
    ):
        return "not a v1 AdmissionReview"
    if response.get("uid") != (uid if want.uid_echoed else ""):
        return f"uid {response.get('uid')!r}, expected {uid if want.uid_echoed else ''!r}"
    allowed = response.get("allowed")
    if not isinstance(allowed, bool):
        return "no boolean `allowed`"
    if want.allowed is not None and allowed != want.allowed:
        return f"allowed={allowed}, expected {want.allowed}"
    if not allowed:
        code = (response.get("status") or {}).get("code")
        if not isinstance(code, int) or (want.code is not None and code != want.code):
            return f"status.code {code!r}, expected {want.code}"
    return None


class Pool:
    """Keep-alive TLS connections to the server, at most `limit` open; waiting for one is latency.

    Like the API server's HTTP client, it never reuses a connection the server has closed
    or may be about to close: uvicorn closes one idle for 30 s (`timeout_keep_alive`).
    """

    def __init__(self, port: int, context: ssl.SSLContext, limit: int) -> None:
        self.port, self.context, self.limit = port, context, limit
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.open = 0
        self.peak = 0
        self.retired = 0
        self.freed = asyncio.Condition()

    async def take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self.freed:
            await self.freed.wait_for(lambda: bool(self.idle) or self.open < self.limit)
            now = time.monotonic()
            while self.idle:
                reader, writer, since = self.idle.pop()
                if not reader.at_eof() and now - since < IDLE_LIMIT:
                    return reader, writer
                writer.close()
                self.open -= 1
                self.retired += 1
            self.open += 1
            self.peak = max(self.peak, self.open)
        try:
            return await asyncio.open_connection("127.0.0.1", self.port, ssl=self.context, server_hostname="127.0.0.1")
        except BaseException:
            await self.drop(None)
            raise

    async def give(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        async with self.freed:
            self.idle.append((*conn, time.monotonic()))
            self.freed.notify()

    async def drop(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        if conn is not None:
            conn[1].close()
        async with self.freed:
            self.open -= 1
            self.freed.notify()

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()


async def exchange(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], body: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 POST /validate on a kept-alive connection: (status, body)."""
    reader, writer = conn
    head = f"POST /validate?timeout=5s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    status_line = await reader.readline()
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"bad status line {status_line[:80]!r}")
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return int(parts[1]), await reader.readexactly(length)


async def drive_open_loop(
    port: int, ca_file: str, rate: float, seconds: float, warmup: float, plans: int, connections: int
) -> dict[str, Any]:
    """Sends rate × (warmup + seconds) requests, each at its due time; checks every answer."""
    cases = make_cases(plans)
    rng = random.Random(3)
    categories, weights = list(WEIGHTS), list(WEIGHTS.values())
    cursor: Counter[str] = Counter()
    context = ssl.create_default_context(cafile=ca_file)
    pool = Pool(port, context, connections)
    warm_count = int(rate * warmup)
    total = warm_count + int(rate * seconds)
    warm, measured = Tally(), Tally()
    loop = asyncio.get_running_loop()

    async def one(seq: int, due: float, case: Case) -> None:
        tally = warm if seq < warm_count else measured
        uid = f"soak-{seq:09d}"
        body = case.body.replace(UID_MARK.encode(), uid.encode(), 1)
        tally.sent += 1
        tally.lags.append(loop.time() - due)
        tally.by_category[case.category] += 1
        conn = None
        try:
            conn = await asyncio.wait_for(pool.take(), ANSWER_TIMEOUT)
            status, payload = await asyncio.wait_for(exchange(conn, body), ANSWER_TIMEOUT)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError, ssl.SSLError) as exc:
            if conn is not None:
                await pool.drop(conn)
            tally.error("no answer", f"{case.category} {uid}: {type(exc).__name__}: {exc}")
            return
        tally.answered += 1
        tally.latencies.append(loop.time() - due)
        await pool.give(conn)
        wrong = check(case, uid, status, payload)
        if wrong:
            tally.error(f"{case.category}: {wrong.split(',')[0]}", f"{uid} {wrong}; answer {payload[:200]!r}")

    tasks: set[asyncio.Task[None]] = set()
    start = loop.time() + 0.1
    measure_from = start + warm_count / rate
    for seq in range(total):
        due = start + seq / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        category = rng.choices(categories, weights)[0]
        pool_of = cases[category]
        case = pool_of[cursor[category] % len(pool_of)]
        cursor[category] += 1
        task = loop.create_task(one(seq, due, case))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    measure_to = loop.time()
    if tasks:
        done, pending = await asyncio.wait(set(tasks), timeout=DRAIN_TIMEOUT)
        for task in pending:
            task.cancel()
        for _ in pending:
            measured.error("no answer", "still unanswered when the drain timed out")
    pool.close()
    lat = Result(connections, measured.answered, measured.errors, measure_to - measure_from, measured.latencies)
    lag = Result(connections, measured.sent, 0, 1.0, measured.lags)
    return {
        "planned": total,
        "warmup": {
            "sent": warm.sent,
            "answered": warm.answered,
            "errors": warm.errors,
            "error_kinds": dict(warm.error_kinds),
            "examples": warm.examples,
        },
        "sent": measured.sent,
        "answered": measured.answered,
        "errors": measured.errors,
        "error_kinds": dict(measured.error_kinds),
        "examples": measured.examples,
        "by_category": dict(measured.by_category),
        "seconds": measure_to - measure_from,
        "p50_ms": lat.percentile(50) if measured.latencies else None,
        "p99_ms": lat.percentile(99) if measured.latencies else None,
        "max_ms": max(measured.latencies) * 1000 if measured.latencies else None,
        "lag_p99_ms": lag.percentile(99) if measured.lags else None,
        "connections_peak": pool.peak,
        "connections_retired": pool.retired,
        # CLOCK_MONOTONIC is one clock for every process on Linux: the parent picks its
        # memory samples from this window.
        "measure_from": time.monotonic() - (loop.time() - measure_from),
        "measure_to": time.monotonic() - (loop.time() - measure_to),
    }


# -- orchestration ------------------------------------------------------------------------


def server_counts(port: int, ca_file: str) -> tuple[int, int]:
    """(answers the server counted: reviews + bad requests, series of gpuadmit_reviews_total)."""
    context = ssl.create_default_context(cafile=ca_file)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
    text = b"".join(chunks).decode().split("\r\n\r\n", 1)[-1]
    answered = series = 0
    for line in text.splitlines():
        if line.startswith("gpuadmit_reviews_total{"):
            series += 1
            answered += int(float(line.rsplit(" ", 1)[1]))
        elif line.startswith("gpuadmit_bad_requests_total{"):
            answered += int(float(line.rsplit(" ", 1)[1]))
    return answered, series


def soak(args: argparse.Namespace) -> int:
    ca_file, cert, key = make_tls()
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="soak-server-", suffix=".log", delete=False)
    server = subprocess.Popen(
        serve_command(port, cert, key),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    client: subprocess.Popen[bytes] | None = None
    samples: list[tuple[float, float]] = []
    try:
        wait_healthy(port, str(ca_file), server)
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--client",
            "--port",
            str(port),
            "--ca",
            str(ca_file),
            "--rate",
            str(args.rate),
            "--seconds",
            str(args.seconds),
            "--warmup",
            str(args.warmup),
            "--plans",
            str(args.plans),
            "--connections",
            str(args.connections),
        ]
        client = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
        give_up = time.monotonic() + args.warmup + args.seconds + DRAIN_TIMEOUT + 120  # + making the payloads
        while client.poll() is None and time.monotonic() < give_up:
            samples.append((time.monotonic(), rss_mib(server.pid)[0]))
            time.sleep(1.0)
        if client.poll() is None:
            client.kill()
            raise SystemExit("the load generator did not finish in time")
        output = client.stdout.read() if client.stdout else b""
        if client.returncode != 0:
            raise SystemExit(f"the load generator failed with exit {client.returncode}")
        report = json.loads(output)
        counted, series = server_counts(port, str(ca_file))
        peak = rss_mib(server.pid)[1]
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    window = [rss for at, rss in samples if report["measure_from"] <= at <= report["measure_to"] + 0.5]
    if not window:
        raise SystemExit("no memory samples inside the measured window")
    start, end, top = window[0], window[-1], max(window)
    growth = (end - start) / start
    sent_all = report["warmup"]["sent"] + report["sent"]
    errors = report["errors"] + report["warmup"]["errors"]
    if counted != report["warmup"]["answered"] + report["answered"]:
        errors += 1
        print(f"server counted {counted} answers, the client received {report['warmup']['answered'] + report['answered']}")
    print(f"machine: {describe()}")
    print(f"server: gpuadmit serve, one uvicorn worker, TLS on 127.0.0.1:{port}; load from a second process, open loop")
    print("mix (measured): " + ", ".join(f"{k} {v}" for k, v in sorted(report["by_category"].items(), key=lambda kv: -kv[1])))
    print(f"warm-up: {args.warmup:g} s, {report['warmup']['sent']} requests, {report['warmup']['errors']} errors")
    print(f"measured: {report['seconds']:.1f} s at {args.rate:g} req/s planned")
    print(f"  requests sent {report['sent']}, answered {report['answered']}, errors {report['errors']}")
    print(f"  achieved rate {report['answered'] / report['seconds']:.1f} req/s")
    print(f"  latency from due time: p50 {report['p50_ms']:.2f} ms, p99 {report['p99_ms']:.2f} ms, max {report['max_ms']:.2f} ms")
    print(
        f"  send lag p99 {report['lag_p99_ms']:.2f} ms, connections at most {report['connections_peak']} (retired idle: {report['connections_retired']})"
    )
    print(f"  server answers counted by its metrics {counted} (all {sent_all} requests), gpuadmit_reviews_total series {series}")
    print(
        f"resident memory (MiB, {len(window)} samples, 1 s apart): start {start:.1f}, end {end:.1f}, max {top:.1f}, growth {growth:+.1%} (peak VmHWM {peak:.1f})"
    )
    for kind, n in {**report["warmup"]["error_kinds"], **report["error_kinds"]}.items():
        print(f"  error {kind}: {n}")
    for example in report["warmup"]["examples"] + report["examples"]:
        print(f"  e.g. {example}")
    ok = errors == 0 and growth < MAX_GROWTH and report["sent"] == report["answered"]
    print("PASS" if ok else "FAIL", f"(errors {errors} must be 0; memory growth {growth:+.1%} must stay under {MAX_GROWTH:.0%})")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second, fixed")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds at the same rate before measuring")
    parser.add_argument("--plans", type=int, default=1200, help="distinct 32-model ServingPlans in the mix")
    parser.add_argument("--connections", type=int, default=256, help="most keep-alive connections open at once")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ca", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (0 < args.rate <= 5000 and 0 < args.seconds <= 3600 and 0 <= args.warmup <= 600 and 1 <= args.connections <= 1024):
        parser.error("--rate 0..5000, --seconds 0..3600, --warmup 0..600, --connections 1..1024")
    if args.client:
        report = asyncio.run(
            drive_open_loop(args.port, args.ca, args.rate, args.seconds, args.warmup, args.plans, args.connections)
        )
        sys.stdout.write(json.dumps(report))
        return 0
    return soak(args)


if __name__ == "__main__":
    raise SystemExit(main())

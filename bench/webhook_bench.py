"""Webhook benchmark: `gpuadmit serve` against a bare Starlette app, same client, TLS and payloads.

    python bench/webhook_bench.py                 # both servers at 1, 16 and 64 concurrent
    python bench/webhook_bench.py --threadpool    # also gpuadmit with every review judged in a thread

(a) is `gpuadmit serve` (one uvicorn worker) judging distinct 32-model, 8-GPU ServingPlans,
so no cache of earlier answers can stand in for judging; (b) is a bare Starlette app on the
same uvicorn that parses the review and answers `allowed: true` with its uid. The client is
one asyncio process speaking HTTP/1.1 keep-alive over TLS, one connection per concurrent
request, each sending its next review as soon as the answer arrives (closed loop).
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
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

FRAMEWORKS = ("tensorrt_llm", "vllm", "pytorch", "onnxruntime")


# -- payloads ---------------------------------------------------------------------------


def make_plan(index: int, rng: random.Random) -> dict[str, Any]:
    """A distinct 8-GPU, 32-model ServingPlan custom resource; about a third are unsafe."""
    gpus = [{"id": f"gpu{g}", "product": "H100-SXM-80GB", "sharing": rng.choice(["mps", "time-slicing"])} for g in range(8)]
    models: list[dict[str, Any]] = []
    for m in range(32):
        critical = m < 8  # one latency-critical model on each GPU, three bulk ones beside it
        framework = rng.choice(FRAMEWORKS)
        model: dict[str, Any] = {
            "name": f"model-{index}-{m}",
            "framework": framework,
            "gpu": f"gpu{m % 8}",
            "instances": 1,
            "gpu_gb": round(rng.uniform(1.0, 12.0), 2),
            "latency_critical": critical,
            "sla_ms": rng.choice([50, 100, 200, 500]),
            "priority": 1 if critical else rng.randint(2, 5),
            "rate_limit": {
                "max_concurrency": 16,
                "max_queue": 32,
                "queue_timeout_ms": 20,
                "timeout_action": "reject",
            },  # ≤ half the tightest SLA
            # Limits, not reservations: the critical model keeps min(40, 100 - 3 x 20) = 40 %.
            "caps": {"max_batch_size": rng.choice([4, 8, 16]), "compute_pct": 40 if critical else 20},
        }
        if framework in ("tensorrt_llm", "vllm"):
            model["memory_fraction"] = round(rng.uniform(0.05, 0.15), 3)
            if framework == "vllm":  # a fraction of total memory: at least its weights, or vLLM cannot start
                model["memory_fraction"] = round(max(model["memory_fraction"], (model["gpu_gb"] + 1.0) / 79.0), 3)
        if framework == "onnxruntime":
            model["memory_limit_gb"] = round(model["gpu_gb"] + 1, 2)
        if index % 3 == 0 and m % 8 == 1:
            model.pop("rate_limit")
            model["latency_critical"] = True
        models.append(model)
    return {
        "apiVersion": "gpuadmit.dev/v1alpha1",
        "kind": "ServingPlan",
        "metadata": {"name": f"plan-{index}", "namespace": "bench", "uid": f"00000000-0000-0000-0000-{index:012d}"},
        "spec": {"gpus": gpus, "models": models},
    }


def make_reviews(count: int, seed: int = 7) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    reviews = []
    for i in range(count):
        uid = f"review-{i:06d}"
        body = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": {"group": "gpuadmit.dev", "version": "v1alpha1", "kind": "ServingPlan"},
                "resource": {"group": "gpuadmit.dev", "version": "v1alpha1", "resource": "servingplans"},
                "name": f"plan-{i}",
                "namespace": "bench",
                "operation": "CREATE",
                "userInfo": {"username": "bench"},
                "object": make_plan(i, rng),
                "oldObject": None,
                "dryRun": False,
            },
        }
        reviews.append((uid, json.dumps(body).encode()))
    return reviews


# -- the bare app (b) -------------------------------------------------------------------


def bare_app(parser: str = "json") -> Any:
    """Parses the review and allows it, echoing the uid: the floor any webhook pays.

    `parser`: the standard library's `json` (what a minimal webhook uses), or `orjson`
    (what gpuadmit uses), to show how much of the ratio is JSON decoding.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    loads = json.loads
    if parser == "orjson":
        import orjson

        loads = orjson.loads

    async def validate(request: Request) -> Response:
        review = loads(await request.body())
        answer = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": True},
        }
        return Response(json.dumps(answer, separators=(",", ":")), media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response("ok\n")

    return Starlette(routes=[Route("/validate", validate, methods=["POST"]), Route("/healthz", healthz)])


def run_bare(port: int, cert: str, key: str, parser: str) -> None:
    import uvicorn

    uvicorn.run(
        bare_app(parser),
        host="127.0.0.1",
        port=port,
        ssl_certfile=cert,
        ssl_keyfile=key,
        access_log=False,
        log_level="warning",
        server_header=False,
    )


# -- the client -------------------------------------------------------------------------


@dataclass
class Result:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def _worker(
    port: int,
    context: ssl.SSLContext,
    reviews: list[tuple[str, bytes]],
    start: int,
    stop_at: float,
    out: Result,
    warmup_until: float,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
    i = start
    try:
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            uid, body = reviews[i % len(reviews)]
            i += 1
            head = f"POST /validate?timeout=5s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            began = time.perf_counter()
            writer.write(head.encode() + body)
            status = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            payload = await reader.readexactly(length)
            elapsed = time.perf_counter() - began
            if began < warmup_until:
                continue
            out.requests += 1
            out.latencies.append(elapsed)
            if not status.startswith(b"HTTP/1.1 200") or f'"uid":"{uid}"'.encode() not in payload:
                out.errors += 1
    finally:
        writer.close()


async def drive(
    port: int, ca_file: str, reviews: list[tuple[str, bytes]], concurrency: int, seconds: float, warmup: float
) -> Result:
    context = ssl.create_default_context(cafile=ca_file)
    result = Result(concurrency, 0, 0, seconds, [])
    begin = time.perf_counter()
    warmup_until = begin + warmup
    stop_at = warmup_until + seconds
    step = max(1, len(reviews) // concurrency)
    await asyncio.gather(*(_worker(port, context, reviews, k * step, stop_at, result, warmup_until) for k in range(concurrency)))
    return result


# -- orchestration ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_tls() -> tuple[Path, Path, Path]:
    """A throwaway CA and a 127.0.0.1 serving certificate: (ca file, cert chain, key)."""
    import trustme

    folder = Path(tempfile.mkdtemp(prefix="gpuadmit-bench-"))
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    ca_file, cert, key = folder / "ca.pem", folder / "tls.crt", folder / "tls.key"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    return ca_file, cert, key


def serve_command(port: int, cert: Path, key: Path, *extra: str) -> list[str]:
    """`gpuadmit serve` on 127.0.0.1 over TLS, no rule watching, warnings only in its log."""
    return [
        sys.executable,
        "-m",
        "policy.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--watch-interval",
        "0",
        "--log-level",
        "warning",
        *extra,
    ]


def wait_healthy(port: int, ca_file: str, process: subprocess.Popen[bytes]) -> None:
    context = ssl.create_default_context(cafile=ca_file)
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if tls.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("server did not become healthy")


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def bench_server(
    label: str,
    command: list[str],
    port: int,
    ca_file: str,
    reviews: list[tuple[str, bytes]],
    levels: list[int],
    seconds: float,
    warmup: float,
) -> tuple[dict[int, Result], tuple[float, float]]:
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{label}-", suffix=".log", delete=False)
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    try:
        wait_healthy(port, ca_file, process)
        results = {c: asyncio.run(drive(port, ca_file, reviews, c, seconds, warmup)) for c in levels}
        memory = rss_mib(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    return results, memory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plans", type=int, default=1200, help="distinct ServingPlans (at least 1000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per concurrency level")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each level")
    parser.add_argument("--levels", default="1,16,64")
    parser.add_argument("--threadpool", action="store_true", help="also run gpuadmit judging every review in a worker thread")
    parser.add_argument(
        "--bare-json", choices=["json", "orjson"], default="json", help="the bare app's JSON decoder (gpuadmit uses orjson)"
    )
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare:
        run_bare(args.port, args.cert, args.key, args.bare_json)
        return 0
    levels = [int(x) for x in args.levels.split(",")]
    ca_file, cert, key = make_tls()
    reviews = make_reviews(args.plans)
    size = statistics.mean(len(b) for _, b in reviews)
    print(f"machine: {describe()}")
    print(
        f"payloads: {len(reviews)} distinct ServingPlans, 8 GPUs and 32 models each, {size / 1024:.1f} KiB per review; TLS, HTTP/1.1 keep-alive"
    )
    print(
        f"each level: {args.warmup:g} s warm-up, then {args.seconds:g} s measured; the bare app decodes with {args.bare_json}, gpuadmit with orjson\n"
    )

    runs: list[tuple[str, list[str], int]] = []
    port = free_port()
    runs.append(("a: gpuadmit serve", serve_command(port, cert, key), port))
    if args.threadpool:
        port = free_port()
        runs.append(("a': gpuadmit serve, threadpool", serve_command(port, cert, key, "--inline-max-bytes", "0"), port))
    port = free_port()
    runs.append(
        (
            "b: bare Starlette",
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--bare",
                "--bare-json",
                args.bare_json,
                "--port",
                str(port),
                "--cert",
                str(cert),
                "--key",
                str(key),
            ],
            port,
        )
    )

    table: dict[str, tuple[dict[int, Result], tuple[float, float]]] = {}
    for label, command, port in runs:
        table[label] = bench_server(label, command, port, str(ca_file), reviews, levels, args.seconds, args.warmup)

    print(f"{'server':<32} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for label, (results, _) in table.items():
        for c, r in results.items():
            print(f"{label:<32} {c:>4} {r.throughput:>8.0f} {r.percentile(50):>8.2f} {r.percentile(99):>8.2f} {r.errors:>6}")
    print()
    bare = table["b: bare Starlette"][0]
    for label, (results, (rss, peak)) in table.items():
        print(f"{label:<32} resident memory {rss:.0f} MiB (peak {peak:.0f} MiB)")
        if label.startswith("a"):
            ratios = ", ".join(f"{c}: {results[c].throughput / bare[c].throughput:.0%}" for c in levels)
            print(f"{'':<32} throughput a/b by concurrency: {ratios}")
    failed = sum(r.errors for results, _ in table.values() for r in results.values())
    print()
    for line in floors(table["a: gpuadmit serve"], bare, failed):
        print(line)
    return 1 if failed else 0


#: What the webhook must reach on a 2-core machine with one worker (docs/PERFORMANCE.md).
FLOOR_RATIO = 0.30
FLOOR_P99_MS_AT_16 = 10.0
FLOOR_RSS_MIB = 150.0


def floors(gpuadmit: tuple[dict[int, Result], tuple[float, float]], bare: dict[int, Result], errors: int) -> list[str]:
    """One line per floor: the figure, the floor, and whether this run met it."""
    results, (rss, peak) = gpuadmit
    checks = [
        (
            f"throughput >= {FLOOR_RATIO:.0%} of bare at {c}",
            f"{results[c].throughput / bare[c].throughput:.0%}",
            results[c].throughput / bare[c].throughput >= FLOOR_RATIO,
        )
        for c in results
        if c in bare
    ]
    if 16 in results:
        p99 = results[16].percentile(99)
        checks.append((f"p99 at 16 concurrent < {FLOOR_P99_MS_AT_16:g} ms", f"{p99:.2f} ms", p99 < FLOOR_P99_MS_AT_16))
    checks.append((f"resident memory < {FLOOR_RSS_MIB:g} MiB", f"{peak:.0f} MiB peak", peak < FLOOR_RSS_MIB))
    checks.append(("zero errors", str(errors), errors == 0))
    return [f"floor {'met' if ok else 'MISSED'}: {name}: {figure}" for name, figure, ok in checks]


if __name__ == "__main__":
    raise SystemExit(main())

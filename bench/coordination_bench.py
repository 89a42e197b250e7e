"""What coordinating replicas through Leases costs a review (`serve --cluster kube`).

    python bench/coordination_bench.py                 # 200 admissions each way
    python bench/coordination_bench.py --repeat 500

Two admission apps against the test suite's fake API server (tests/fakes/kube_api.py with
writable Leases, tests/fakes/kube_leases.py) on loopback: one with `--no-coordination`, one
coordinating. Each review is an allowed CREATE of one Deployment into a pool of its own, so
every coordinated one reads and writes a Lease (a GET, then a POST: the pool's first
admission). Through the ASGI app in-process (no TLS); the median and 90th percentile of
`--repeat` reviews after 20 to warm up. The fake answers in well under a millisecond; in a
cluster, add the API server's round trips (and etcd's write for the PUT).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

from bench.machine import describe  # noqa: E402


async def _admit(app: Any, first: int, count: int) -> list[float]:
    import httpx
    from replicas_support import create, deployment

    seconds = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gpuadmit", timeout=60) as http:
        for n in range(first, first + count):
            obj = deployment(f"svc-{n}")
            obj["metadata"]["annotations"]["gpuadmit.dev/gpu-pool"] = f"pool-{n}"
            started = time.perf_counter()
            reply = await http.post("/validate", json=create(obj))
            seconds.append(time.perf_counter() - started)
            if not reply.json()["response"]["allowed"]:
                raise SystemExit(f"svc-{n} was denied: the benchmark measures admissions")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    from fakes.kube_api import FakeApiServer
    from fakes.kube_leases import Leases
    from replicas_support import NODE, close_replicas, replica

    print(describe())
    print(f"{'coordination':>12}  {'median ms':>9}  {'p90 ms':>7}")
    server = FakeApiServer([NODE])
    Leases(server)
    with server, tempfile.TemporaryDirectory() as folder:
        kubeconfig = server.kubeconfig(Path(folder))
        first = 0
        for coordinate in (False, True):
            app = replica(kubeconfig, coordinate=coordinate)
            asyncio.run(_admit(app, first, 20))
            seconds = asyncio.run(_admit(app, first + 20, args.repeat))
            first += 20 + args.repeat
            ninetieth = sorted(seconds)[int(len(seconds) * 0.9)]
            label = "Leases" if coordinate else "none"
            print(f"{label:>12}  {statistics.median(seconds) * 1000:>9.2f}  {ninetieth * 1000:>7.2f}")
        close_replicas()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

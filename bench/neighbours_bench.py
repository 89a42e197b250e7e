"""Review latency against the number of neighbours in the reviewed object's sharing domain.

    python bench/neighbours_bench.py                  # 0, 10, 100 and 1,000 neighbours
    python bench/neighbours_bench.py --counts 0 100 --repeat 200
    python bench/neighbours_bench.py --cpu            # CPU time: steadier on a busy machine

In-process, no HTTP: `webhook.judge.judge` on a CREATE of one Deployment in a time-sliced
A100 pool, with a cluster snapshot (policy.cluster) holding N running Deployments in the same
pool, plus as many again in another pool (they must cost nothing: they are not neighbours).
Reviews are dry runs, so none of them is reserved and each meets exactly N neighbours.
The median of `--repeat` reviews is reported for each N, with its ratio to the lone review.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

SHARED = "NVIDIA-A100-SXM4-80GB-SHARED"
OTHER = "NVIDIA-H100-80GB-HBM3-SHARED"


def deployment(name: str, product: str, gpu_gb: float, namespace: str = "prod") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "annotations": {"gpuadmit.dev/gpu-gb": str(gpu_gb), "gpuadmit.dev/max-batch-size": "8"},
        },
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu.product": product},
                    "containers": [{"name": "server", "image": "server:1", "resources": {"limits": {"nvidia.com/gpu": 1}}}],
                }
            },
        },
    }


def snapshot(neighbours: int) -> Any:
    from policy.cluster import view_of
    from policy.yamlio import Document

    gpu_gb = round(60.0 / max(neighbours, 1), 3) if neighbours else 1.0
    items = [deployment(f"n{i}", SHARED, max(gpu_gb - 0.5, 0.01)) for i in range(neighbours)]
    items += [deployment(f"o{i}", OTHER, 1.0, "other") for i in range(neighbours)]
    docs = [Document(item, "snapshot.yaml", n, n + 1) for n, item in enumerate(items)]
    return view_of(docs, "snapshot.yaml")


def review(index: int) -> Any:
    from webhook.review import parse_review

    obj = deployment(f"new-{index}", SHARED, 4.0)
    return parse_review(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": f"uid-{index}",
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "namespace": "prod",
                "name": obj["metadata"]["name"],
                "operation": "CREATE",
                "object": obj,
                # A dry run is judged the same but reserves nothing: every review meets the
                # same N neighbours.
                "dryRun": True,
            },
        }
    )


def measure(count: int, repeat: int, clock: Any = time.perf_counter) -> tuple[float, bool]:
    from policy.api import Linter
    from webhook.judge import judge

    linter = Linter()
    view = snapshot(count)
    reviews = [review(i) for i in range(repeat)]
    judge(linter, reviews[0], "enforce", view)  # warm: the view's index, imports, rule compilation
    times: list[float] = []
    allowed = True
    for item in reviews:
        started = clock()
        answer = judge(linter, item, "enforce", view)
        times.append(clock() - started)
        allowed = allowed and answer.allowed
    return statistics.median(times), allowed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[0, 10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time each review in this process's CPU time, not wall time (steadier on a machine others are using)",
    )
    args = parser.parse_args(argv)
    clock = time.process_time if args.cpu else time.perf_counter
    print(describe() + (" (CPU time)" if args.cpu else ""))
    print(f"{'neighbours':>10}  {'median ms':>9}  {'× lone':>7}  {'ms per neighbour':>16}  verdict")
    lone: float | None = None
    for count in args.counts:
        median, allowed = measure(count, args.repeat, clock)
        lone = lone if lone is not None else median
        per = (median - lone) / count * 1000 if count else 0.0
        print(f"{count:>10}  {median * 1000:>9.3f}  {median / lone:>7.2f}  {per:>16.4f}  {'allowed' if allowed else 'denied'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

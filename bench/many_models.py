"""Many models on one GPU: time and peak resident memory of `gpuadmit lint`.

Every model of the plan sits on the same GPU, a third of them latency-critical, so each
model has every other as a neighbour: the shape that once made memory grow with the
square of the models. Each size runs `gpuadmit lint` in its own process, so its peak
resident memory (the kernel's maxrss for that process) is its own; start-up (imports,
rules) is in its time. A second table times `Linter.lint_paths` in this process (the
fastest of --repeat), the read-and-judge part alone, to show how it grows.

    python bench/many_models.py [--sizes 1000,3000,10000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe  # noqa: E402


def one_gpu_plan(n_models: int) -> str:
    """`n_models` models on gpu0: every third latency-critical, the others bulk and capped."""
    lines = [
        "apiVersion: gpuadmit.dev/v1alpha1",
        "kind: ServingPlan",
        f"metadata: {{name: one-gpu-{n_models}}}",
        "gpus:",
        "  - {id: gpu0, memory_gb: 4096, sharing: time-slicing}",
        "models:",
    ]
    for m in range(n_models):
        if m % 3 == 0:
            lines.append(
                f"  - {{name: model-{m:05d}, framework: pytorch, gpu: gpu0, gpu_gb: 0.1, latency_critical: true,"
                " sla_ms: 200, priority: 1, rate_limit: {max_concurrency: 4, max_queue: 8, queue_timeout_ms: 100}}"
            )
        else:
            lines.append(
                f"  - {{name: model-{m:05d}, framework: pytorch, gpu: gpu0, gpu_gb: 0.1, priority: 3,"
                " caps: {max_batch_size: 8}}"
            )
    return "\n".join(lines) + "\n"


def measure(path: Path) -> tuple[float, float, int, str]:
    """Seconds, peak RSS (MiB), exit code and the last line of `gpuadmit lint --format json` on `path`."""
    command = [sys.executable, "-m", "policy.cli", "lint", "--format", "json", str(path)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Read the output before waiting so a large report cannot fill the pipe and stall the child.
    out, err = process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    last = (err or out).decode(errors="replace").strip().splitlines()[-1:] or [""]
    return seconds, usage.ru_maxrss / 1024, process.returncode, last[0][:160]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,3000,10000", help="comma-separated model counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the fastest is shown")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"many models on one GPU: `gpuadmit lint --format json`, one process per run ({describe()})")
    print(f"{'models':>8} {'plan KiB':>9} {'seconds':>8} {'µs/model':>9} {'peak RSS MiB':>13} {'exit':>5}")
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            path = Path(folder) / f"one-gpu-{n}.yaml"
            path.write_text(one_gpu_plan(n), encoding="utf-8")
            runs = [measure(path) for _ in range(max(1, args.repeat))]
            seconds, rss, code, last = min(runs)
            print(f"{n:>8,} {path.stat().st_size / 1024:>9.0f} {seconds:>8.2f} {seconds / n * 1e6:>9.0f} {rss:>13.0f} {code:>5}")
            if code not in (0, 1):
                print(f"         exit {code}: {last}")
        print(f"\nread and judge only (`Linter.lint_paths`, in this process, fastest of {max(1, args.repeat)})")
        print(f"{'models':>8} {'seconds':>8} {'µs/model':>9}")
        from policy.api import Linter

        linter = Linter()
        for n in sizes:
            path = Path(folder) / f"one-gpu-{n}.yaml"
            best = float("inf")
            for _ in range(max(1, args.repeat)):
                started = time.perf_counter()
                linter.lint_paths([path])
                best = min(best, time.perf_counter() - started)
            print(f"{n:>8,} {best:>8.2f} {best / n * 1e6:>9.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

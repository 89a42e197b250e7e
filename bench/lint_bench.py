"""Lint benchmark: generated plans of 100, 1,000 and 10,000 models (8 per GPU).

Prints, per size, the time to lint one plan (read, validate, facts, rules) against a
baseline measured in the same run: merely parsing the same YAML with PyYAML's C
loader. Also times the one-file `gpuadmit lint` start-to-exit path (pre-commit).

    python bench/lint_bench.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe  # noqa: E402

FRAMEWORKS = ["tensorrt_llm", "vllm", "pytorch", "onnxruntime", "python", "pytorch", "onnxruntime", "pytorch"]


def generate_plan(n_models: int, per_gpu: int = 8) -> str:
    """A realistic plan: per GPU one critical chat model, a guard, and capped bulk models."""
    n_gpus = max(1, -(-n_models // per_gpu))
    lines = [
        "apiVersion: gpuadmit.dev/v1alpha1",
        "kind: ServingPlan",
        f"metadata: {{name: bench-{n_models}}}",
        "gpus:",
    ]
    lines += [f"  - {{id: gpu{g}, product: H100-SXM-80GB, sharing: time-slicing}}" for g in range(n_gpus)]
    lines.append("models:")
    for m in range(n_models):
        gpu, slot = divmod(m, per_gpu)
        framework = FRAMEWORKS[slot % len(FRAMEWORKS)]
        critical = slot < 2
        lines.append(f"  - name: model-{m}")
        lines.append(f"    framework: {framework}")
        lines.append(f"    gpu: gpu{gpu}")
        lines.append(f"    gpu_gb: {2 + slot // 2}")
        if framework in ("vllm", "tensorrt_llm"):
            lines.append("    memory_fraction: 0.1")
        if framework == "onnxruntime":
            lines.append(f"    memory_limit_gb: {3 + slot // 2}")
        if critical:
            lines.append("    latency_critical: true")
        if critical:
            lines.append("    sla_ms: 200")
        lines.append(f"    priority: {1 if critical else 3}")
        if critical:
            lines.append("    rate_limit: {max_concurrency: 16, max_queue: 32, queue_timeout_ms: 100, timeout_action: reject}")
        else:
            lines.append("    caps: {max_batch_size: 16}")
    return "\n".join(lines) + "\n"


def best_of(repeat: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    args = parser.parse_args()

    from policy.api import Linter

    linter = Linter()  # rules compiled once, as in the webhook and in every CLI run
    print(f"machine: {describe()}")
    print(f"{'models':>7} {'parse-only':>11} {'lint':>9} {'ratio':>6} {'per model':>10}")
    folder = Path(tempfile.mkdtemp(prefix="gpuadmit-bench-"))
    per_model = []
    for size in args.sizes:
        path = folder / f"plan-{size}.yaml"
        text = generate_plan(size)
        path.write_text(text)
        parse = best_of(args.repeat, lambda: yaml.load(path.read_text(), Loader=yaml.CSafeLoader))  # noqa: B023 - timed here, in this iteration
        report = linter.lint_paths([path])
        assert not [f for f in report.findings if f.severity == "error"], report.findings[:3]
        lint = best_of(args.repeat, lambda: linter.lint_paths([path]))  # noqa: B023 - timed here, in this iteration
        per_model.append(lint / size)
        print(f"{size:>7} {parse * 1e3:>9.1f}ms {lint * 1e3:>7.1f}ms {lint / parse:>5.2f}x {lint / size * 1e6:>8.1f}µs")
    print(f"cost growth (per-model time, largest / smallest size): {per_model[-1] / per_model[0]:.2f}x (1.0 = linear)")

    seed = Path(__file__).resolve().parents[1] / "samples" / "seed-demo.yaml"
    command = [sys.executable, "-m", "policy.cli", "lint", str(seed)]
    subprocess.run(command, capture_output=True)  # warm the rule cache and the OS file cache
    bare = best_of(args.repeat, lambda: subprocess.run([sys.executable, "-c", "pass"], capture_output=True))
    one_file = best_of(args.repeat, lambda: subprocess.run(command, capture_output=True))
    print(
        f"one-file `gpuadmit lint` start to exit: {one_file * 1e3:.0f} ms (bare `python -c pass`: {bare * 1e3:.0f} ms, {one_file / bare:.1f}x)"
    )


if __name__ == "__main__":
    main()

"""What compiling the fact builder with mypyc would buy, and a check that it changes no fact.

    python bench/compiled_facts.py [--plans 200] [--repeat 15]

Copies the `policy` package to a temporary folder as `compiledpolicy`, compiles its
`facts.py` and `protection.py` there with mypyc (it comes with mypy; a C compiler is
needed), then, in one process, builds the facts of the webhook benchmark's plans with the
pure-Python package and with the compiled copy: every fact must be the same (same keys in
the same order, same values and types, compared by `repr`), and the two are timed
interleaved, in CPU time, best of `--repeat`. Nothing in the repository is compiled or
changed: the wheel stays pure Python.
"""

from __future__ import annotations

import argparse
import importlib
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

COMPILED = ("facts.py", "protection.py")


def compile_copy(folder: Path) -> None:
    shutil.copytree(ROOT / "policy", folder / "compiledpolicy", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    (folder / "mypy.ini").write_text("[mypy]\nplugins = pydantic.mypy\nignore_missing_imports = True\n")
    subprocess.run(
        [sys.executable, "-m", "mypyc", *[f"compiledpolicy/{name}" for name in COMPILED]],
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    )


def plans(package: str, count: int) -> list[Any]:
    from bench.webhook_bench import make_plan

    readers = importlib.import_module(f"{package}.readers")
    yamlio = importlib.import_module(f"{package}.yamlio")
    rng = random.Random(7)
    docs = [yamlio.Document(make_plan(i, rng), "bench", 0, 1) for i in range(count)]
    return [readers.read_documents([doc], "bench", files=None)[0].plan for doc in docs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gpuadmit-mypyc-") as tmp:
        compile_copy(Path(tmp))
        sys.path.insert(0, tmp)
        compiled = importlib.import_module("compiledpolicy.facts")
        assert not str(compiled.__file__).endswith(".py"), compiled.__file__
        pure = importlib.import_module("policy.facts")
        sides = {"pure Python": (pure.build_facts, plans("policy", args.plans))}
        sides["mypyc"] = (compiled.build_facts, plans("compiledpolicy", args.plans))

        def facts_of(side: str) -> list[str]:
            build, items = sides[side]
            return [repr((f.plan, f.gpus, f.models, f.waivers)) for f in map(build, items)]

        different = sum(a != b for a, b in zip(facts_of("pure Python"), facts_of("mypyc")))
        best = {side: float("inf") for side in sides}
        for _ in range(args.repeat):
            for side, (build, items) in sides.items():
                started = time.process_time()
                for plan in items:
                    build(plan)
                best[side] = min(best[side], (time.process_time() - started) / len(items) * 1e6)
    print(describe() + " (CPU time)")
    print(f"{args.plans} distinct 32-model, 8-GPU plans; facts that differ: {different}")
    for side, micros in best.items():
        print(f"{side:>12}  {micros:7.1f} µs per plan  {micros / best['pure Python']:.2f}×")
    return 1 if different else 0


if __name__ == "__main__":
    raise SystemExit(main())

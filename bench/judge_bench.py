"""In-process cost of judging one webhook review, step by step, without HTTP.

    python bench/judge_bench.py                 # µs per plan: read, facts, rules, judge + answer
    python bench/judge_bench.py --cpu           # CPU time: steadier on a machine others are using

On the webhook benchmark's distinct 32-model, 8-GPU ServingPlans (bench/webhook_bench.py),
each step is timed over all plans, best of `--repeat`, in this order, in one process:

- read: the native reader and pydantic validation of the review's object;
- facts: `build_facts` of the plans read;
- rules: the active rules on those facts (translated, policy.ruleeval);
- judge + answer: `webhook.judge.judge` on the parsed review and the answer's JSON, what
  `gpuadmit serve` does between decoding a body and writing the response.

To compare two trees, run it in each checkout alternately and compare the best figures;
steps of one run share the machine's load, so their ratios are steadier than their values.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--cpu", action="store_true", help="CPU time of this process instead of wall time")
    args = parser.parse_args(argv)

    from bench.webhook_bench import make_reviews
    from policy.api import Linter, gc_paused
    from policy.facts import build_facts
    from policy.readers import read_documents
    from policy.ruleeval import evaluate
    from policy.yamlio import Document
    from webhook.judge import judge
    from webhook.review import parse_json, parse_review

    clock = time.process_time if args.cpu else time.perf_counter
    linter = Linter()
    rules = linter.rules
    reviews = [parse_review(parse_json(body)) for _, body in make_reviews(args.plans)]

    def read() -> list[Any]:
        return [read_documents([Document(r.object, "x", 0, 1)], "x", files=None)[0] for r in reviews]

    def best(step: Callable[[], Any]) -> float:
        times = []
        for _ in range(args.repeat):
            started = clock()
            step()
            times.append(clock() - started)
        return min(times) / len(reviews) * 1e6

    with gc_paused():
        sources = read()
        facts = [build_facts(s.plan) for s in sources]
        figures = {
            "read": best(read),
            "facts": best(lambda: [build_facts(s.plan) for s in sources]),
            "rules": best(lambda: [list(evaluate(rules.active, f, rules._rule_params, rules._fact_keys)) for f in facts]),
            "judge + answer": best(lambda: [json.dumps(judge(linter, r, "enforce").response(r.uid)) for r in reviews]),
        }
    print(describe() + (" (CPU time)" if args.cpu else ""))
    print(f"{len(reviews)} distinct 32-model, 8-GPU plans; µs per plan, best of {args.repeat}")
    for step, micros in figures.items():
        print(f"{step:>16}  {micros:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

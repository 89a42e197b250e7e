"""Rule evaluation benchmark: the three ways to run the built-in rules on a plan's facts.

    python bench/evaluator_bench.py [--plans 300] [--repeat 5]

On the webhook benchmark's distinct 32-model, 8-GPU plans (facts built beforehand, not
timed), per plan, every active built-in rule:

- translated: the Python translation of each rule program (policy.celcompile), the hot path;
- cel-cpp, typed: cel-cpp with the facts handed over as protobuf messages of the facts
  schema (policy.factschema), the keys rules read only, the programs compiled against
  those types: the engine's fallback path (policy.ruleeval);
- cel-cpp, maps: cel-cpp with the facts handed over as maps of the keys rules read, the
  programs compiled with facts as `map(string, dyn)` (the engine's path before the schema).

All three run in the same process, one after the other, so their ratios hold on a busy
machine. Each also checks that it finds the same violators as the translation.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe  # noqa: E402


def _facts(count: int) -> list[Any]:
    from bench.webhook_bench import make_plan
    from policy.facts import build_facts
    from policy.readers import read_documents
    from policy.yamlio import Document

    rng = random.Random(7)
    built = []
    for index in range(count):
        for source in read_documents([Document(make_plan(index, rng), "x", 0, 1)], "x"):
            built.append(build_facts(source.plan))
    return built


def _map_programs(rules: Any) -> tuple[list[Any], Callable[[Any], Any]]:
    """Each rule's program compiled with facts as maps, and the activation of a plan's facts."""
    from cel_expr_python import cel
    from cel_expr_python.ext import ext_bindings, ext_math, ext_strings

    from policy.rulecompile import program_source

    facts = cel.Type.List(cel.Type.Map(cel.Type.STRING, cel.Type.DYN))
    env = cel.NewEnv(
        variables={
            "models": facts,
            "gpus": facts,
            "waivers": facts,
            "plans": facts,
            "plan": cel.Type.Map(cel.Type.STRING, cel.Type.DYN),
            "rule_params": cel.Type.Map(cel.Type.STRING, cel.Type.DYN),
        },
        extensions=[ext_bindings.ExtBindings(), ext_math.ExtMath(), ext_strings.ExtStrings()],
    )
    keys = rules._fact_keys
    params = {r.id: r.params for r in rules.rules}

    def project(items: list[dict[str, Any]], wanted: frozenset[str] | None) -> list[dict[str, Any]]:
        return items if wanted is None else [{k: item[k] for k in wanted} for item in items]

    def activation(f: Any) -> Any:
        return env.Activation(
            {
                "models": project(f.models, keys["models"]),
                "gpus": project(f.gpus, keys["gpus"]),
                "waivers": project(f.waivers, keys["waivers"]),
                "plans": project([f.plan], keys["plans"]),
                "plan": f.plan,
                "rule_params": params,
            }
        )

    return [env.compile(program_source(rule.spec)) for rule in rules.active], activation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plans", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from policy.engine import RuleSet
    from policy.ruleeval import _activations, _chunks, result

    rules = RuleSet.load()
    facts = _facts(args.plans)
    params = {r.id: r.params for r in rules.rules}
    map_programs, map_activation = _map_programs(rules)

    def translated() -> list[Any]:
        return [[rule.fast(*_chunks(f, params)[0]) for rule in rules.active] for f in facts]  # type: ignore[misc]

    def protobuf() -> list[Any]:
        out = []
        for f in facts:
            (activation,) = _activations(_chunks(f, params), rules._fact_keys)
            out.append([result(rule.program.eval(activation), rule) for rule in rules.active])
        return out

    def maps() -> list[Any]:
        out = []
        for f in facts:
            activation = map_activation(f)
            out.append([result(program.eval(activation), rule) for program, rule in zip(map_programs, rules.active)])
        return out

    reference = translated()
    assert maps() == reference, "cel-cpp (maps) disagrees with the translation"
    assert protobuf() == reference, "cel-cpp (typed) disagrees with the translation"
    violators = sum(len(rows) for plan in reference for rows in plan)

    timings: dict[str, list[float]] = {"translated": [], "cel-cpp, typed (protobuf)": [], "cel-cpp, maps": []}
    for _ in range(args.repeat):  # interleaved, so load on the machine hits all three alike
        for label, fn in zip(timings, (translated, protobuf, maps)):
            start = time.perf_counter()
            fn()
            timings[label].append((time.perf_counter() - start) / len(facts) * 1e6)

    print(describe())
    print(f"{len(facts)} distinct 32-model, 8-GPU plans, {len(rules.active)} rules, {violators} violators; best of {args.repeat}")
    base = min(timings["translated"])
    print(f"{'evaluator':<28} {'µs per plan':>12} {'median':>8} {'× translated':>13}")
    for label, values in timings.items():
        print(f"{label:<28} {min(values):>12.1f} {statistics.median(values):>8.1f} {min(values) / base:>12.1f}×")


if __name__ == "__main__":
    main()

"""Evaluating compiled rules on one plan's facts: the rows of each rule's violators.

cel-cpp is the reference evaluator, but handing it a plan's facts costs more than
judging them (bench/evaluator_bench.py: about 9 times the translation's time, as maps
or as typed messages alike). So each program also runs as its Python translation
(policy.celcompile), which returns only when its answer is the one cel-cpp would give
and raises otherwise; then cel-cpp judges, and `FALLBACKS` counts it. A rule the
translator refused at load runs on cel-cpp every time.

cel-cpp receives facts as protobuf messages of the facts schema (policy.factschema),
holding only the facts some rule reads: a value of the wrong type, or a fact missing,
is an error of every rule judged there (fail closed), never a default.

Results come back from cel-cpp through `to_python`, never `Value.plain_value()`:
cel-expr-python 0.1.3 drops a reference to None each time `plain_value()` converts a
null, and aborts the process (`Fatal Python error: none_dealloc`) after a few thousand.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any, Callable, Iterable, Sequence

from . import factschema
from .errors import RuleError
from .facts import Fact, Facts
from .rulecompile import SCOPES, CompiledRule, cel_env

#: cel-cpp caps one evaluation at 10,000 comprehension steps, and building a result
#: list costs time quadratic in its length; chunks of this many subjects stay far
#: from both limits (measured: 128 is the sweet spot for 10,000-model plans).
CHUNK = 128

#: Per rule id: how often a translated rule left a plan to cel-cpp (the translation
#: raised). Read by the webhook's /metrics; only ever grows.
FALLBACKS: Counter[str] = Counter()

#: Per collection, the fact keys cel-cpp is handed (None: all of them).
FactKeys = dict[str, frozenset[str] | None]

#: One chunk's values of rulecompile.VARIABLES.
Chunk = tuple[list[Fact], list[Fact], list[Fact], list[Fact], Fact, dict[str, Any]]


def evaluate(
    rules: Sequence[CompiledRule],
    facts: Facts,
    rule_params: dict[str, Any],
    keys: FactKeys | Callable[[], FactKeys],
) -> Iterable[tuple[CompiledRule, list[list[Any]], str | None]]:
    """Each rule's rows (subject index, validation results, variables), or its error.

    `keys` are the fact keys the rules read, per collection (rulecompile.fact_keys), or
    what gives them, asked only when cel-cpp judges: cel-cpp is handed only those.
    """
    chunks = _chunks(facts, rule_params)
    activations: list[Any] = []
    unusable: str | None = None  # why the facts cannot be handed to cel-cpp
    for rule in rules:
        if rule.fast is not None:
            try:
                if len(chunks) == 1:
                    yield rule, rule.fast(*chunks[0]), None
                else:
                    yield rule, [row for chunk in chunks for row in rule.fast(*chunk)], None
                continue
            except Exception:  # noqa: BLE001 - not an answer the translation vouches for: cel-cpp decides
                FALLBACKS[rule.id] += 1
        if not activations and unusable is None:
            try:
                activations = _activations(chunks, keys() if callable(keys) else keys)
            except (KeyError, TypeError, ValueError) as exc:  # protobuf refuses a wrong type or range
                unusable = f"the facts do not match the facts schema: {type(exc).__name__}: {exc}"
        if unusable is not None:
            yield rule, [], unusable
            continue
        rows: list[list[Any]] = []
        try:
            for activation in activations:
                rows.extend(result(_eval(rule.program, activation), rule))
        except RuleError as exc:
            yield rule, [], exc.message
            continue
        yield rule, rows, None


def _chunks(facts: Facts, rule_params: dict[str, Any]) -> list[Chunk]:
    """The variables of each chunk of CHUNK subjects, so no evaluation nears CEL's step limit."""
    longest = max(len(facts.models), len(facts.gpus), len(facts.waivers))
    if longest <= CHUNK:
        return [(facts.models, facts.gpus, facts.waivers, [facts.plan], facts.plan, rule_params)]
    return [
        (
            facts.models[k : k + CHUNK],
            facts.gpus[k : k + CHUNK],
            facts.waivers[k : k + CHUNK],
            [facts.plan] if k == 0 else [],
            facts.plan,
            rule_params,
        )
        for k in range(0, longest, CHUNK)
    ]


def _activations(chunks: list[Chunk], keys: dict[str, frozenset[str] | None]) -> list[Any]:
    """The chunks as cel-cpp activations, holding only the fact keys rules read."""
    return [activation(*chunk, keys=keys) for chunk in chunks]


@functools.lru_cache(maxsize=1)
def _message_classes() -> dict[str, Any]:
    """Per collection, the protobuf message class of its facts."""
    from google.protobuf import message_factory

    pool = factschema.descriptor_pool()
    return {
        scope.collection: message_factory.GetMessageClass(pool.FindMessageTypeByName(factschema.message_name(name)))
        for name, scope in SCOPES.items()
    }


def activation(
    models: list[Fact],
    gpus: list[Fact],
    waivers: list[Fact],
    plans: list[Fact],
    plan: Fact,
    rule_params: dict[str, Any],
    keys: dict[str, frozenset[str] | None] | None = None,
) -> Any:
    """A cel-cpp activation of facts as schema messages (only `keys` of each collection, when given).

    Raises KeyError for a missing fact, TypeError or ValueError for a value the schema
    does not allow (a str for an int, an int beyond int64).
    """
    _, env = cel_env()
    classes = _message_classes()
    keys = keys or {}

    def messages(collection: str, items: list[Fact]) -> list[Any]:
        cls, wanted = classes[collection], keys.get(collection)
        if wanted is None:
            return [cls(**item) for item in items]
        return [cls(**{key: item[key] for key in wanted}) for item in items]

    plan_message = classes["plans"](**plan)
    return env.Activation(
        {
            "models": messages("models", models),
            "gpus": messages("gpus", gpus),
            "waivers": messages("waivers", waivers),
            "plans": [plan_message] if plans else [],
            "plan": plan_message,
            "rule_params": rule_params,
        }
    )


def _eval(program: Any, activation: Any) -> Any:
    """cel-cpp's value; limits it enforces by raising (comprehension steps) become errors too."""
    try:
        return program.eval(activation)
    except Exception as exc:  # noqa: BLE001 - cel raises plain exceptions for exhausted limits
        raise RuleError(f"evaluation failed: {exc}") from None


def result(value: Any, rule: CompiledRule) -> Any:
    """A cel-cpp result as Python values; an error value raises RuleError."""
    cel, _ = cel_env()
    if value.type() == cel.Type.ERROR:
        raise RuleError(f"evaluation failed: {value.value()}", file=rule.file, field="validations")
    return to_python(value, cel.Type.NULL)


def to_python(value: Any, null: Any) -> Any:
    """`value.plain_value()`, built without it: nulls become None without touching cel-cpp's
    conversion of null, which releases None once too often (cel-expr-python 0.1.3)."""
    if value.type() == null:
        return None
    raw = value.value()
    if hasattr(raw, "DESCRIPTOR"):  # a scope's facts as a whole (a variable `m: model`): a fact dict
        return {
            field.name: list(getattr(raw, field.name)) if field.label == field.LABEL_REPEATED else getattr(raw, field.name)
            for field in raw.DESCRIPTOR.fields
        }
    if isinstance(raw, list):
        return [to_python(item, null) for item in raw]
    if isinstance(raw, dict):
        return {key: to_python(item, null) for key, item in raw.items()}
    return raw

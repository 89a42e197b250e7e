"""Compiling rules: each rule becomes one CEL program per scope collection, type-checked
against the facts schema when it loads.

Generic by design: it knows scopes (model, gpu, waiver, plan), never a rule by name.
Each rule becomes one program that returns only the violators, so a plan costs one
evaluation per rule and chunk, not one per subject:

    cel.bind(params, rule_params["<id>"],
      <subjects>.filter(<s>, <match> && <bind vars>(!(v1) || !(v2) ...))
                .map(<s>, <bind vars>([<s>.idx, [v1, v2, ...], [var1, var2, ...]])))

Before that, every expression is compiled alone in an environment typed by the facts
schema (policy.factschema: one protobuf message per scope), and every message template
is filled in with sample values of the schema's types: a misspelt fact, a comparison
of an int with a string, an unknown parameter or placeholder fails at load with the
rule file and the field, never during a review.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from . import factschema
from .closest import did_you_mean
from .errors import RuleError
from .messages import check_template, sample_facts
from .rules import RuleSpec


@dataclass(frozen=True)
class Scope:
    collection: str
    var: str
    model_key: str | None
    gpu_key: str | None
    position_kind: str
    name_key: str


SCOPES: dict[str, Scope] = {
    "model": Scope("models", "model", "name", "gpu", "model", "name"),
    "gpu": Scope("gpus", "gpu", None, "id", "gpu", "parent"),
    "waiver": Scope("waivers", "waiver", "model", "gpu", "waiver", "idx"),
    "plan": Scope("plans", "plan", None, None, "plan", "name"),
}

#: The variables every rule program sees, in the order translated programs take them.
VARIABLES = ("models", "gpus", "waivers", "plans", "plan", "rule_params")


@dataclass
class CompiledRule:
    spec: RuleSpec
    file: str
    program: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    #: The program translated to a Python function; None where cel-cpp runs it alone
    #: (see policy.celcompile).
    fast: Callable[..., Any] | None = None

    @property
    def id(self) -> str:
        return self.spec.id


def as_params(params: dict[str, Any]) -> dict[str, Any]:
    """Numbers become doubles so rule arithmetic never mixes int and double."""
    return {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in params.items()}


@functools.lru_cache(maxsize=1)
def cel_env() -> tuple[Any, Any]:
    """(the cel module, the environment rule programs run in).

    Typed by the facts schema: each collection is a list of its scope's protobuf message
    (policy.factschema.descriptor_pool), so cel-cpp knows every fact's type, and facts
    reach it as messages (policy.ruleeval), which also keep a NUL inside a string
    where cel-expr-python 0.1.3 cuts a plain str short.
    """
    cel, types = _typed()
    env = cel.NewEnv(
        factschema.descriptor_pool(),
        variables={
            "models": cel.Type.List(types["model"]),
            "gpus": cel.Type.List(types["gpu"]),
            "waivers": cel.Type.List(types["waiver"]),
            "plans": cel.Type.List(types["plan"]),
            "plan": types["plan"],
            "rule_params": cel.Type.Map(cel.Type.STRING, cel.Type.DYN),
        },
        extensions=cel_extensions(),
    )
    return cel, env


def cel_extensions() -> list[Any]:
    """The CEL extensions rules may use: `cel.bind`, the math and the strings libraries.

    One list for the environment that checks each expression when a rule loads and the
    one its program runs in, so a rule the checker accepts always runs, and the reverse.
    """
    from cel_expr_python.ext import ext_bindings, ext_math, ext_strings

    return [ext_bindings.ExtBindings(), ext_math.ExtMath(), ext_strings.ExtStrings()]


def _bind(variables: Sequence[tuple[str, str]], body: str) -> str:
    for name, expression in reversed(variables):
        body = f"cel.bind({name}, {expression}, {body})"
    return body


def program_source(spec: RuleSpec) -> str:
    """The rule as one CEL program over its scope's collection, returning the violators."""
    scope = SCOPES[spec.scope]
    variables = [(v.name, f"({v.expression})") for v in spec.variables]
    checks = [f"({v.expression})" for v in spec.validations]
    failing = "(" + " || ".join(f"!{c}" for c in checks) + ")"
    match = f"({spec.match})" if spec.match else "true"
    row = f"[{scope.var}.idx, [{', '.join(checks)}], [{', '.join(name for name, _ in variables)}]]"
    return (
        f'cel.bind(params, rule_params["{spec.id}"], '
        f"{scope.collection}.filter({scope.var}, {match} && {_bind(variables, failing)})"
        f".map({scope.var}, {_bind(variables, row)}))"
    )


def every_expression_source(spec: RuleSpec) -> str:
    """Like the program, but every expression on every subject (for differential tests)."""
    scope = SCOPES[spec.scope]
    variables = [(v.name, f"({v.expression})") for v in spec.variables]
    checks = [f"({v.expression})" for v in spec.validations]
    match = f"({spec.match})" if spec.match else "true"
    row = f"[{scope.var}.idx, [{', '.join(checks)}], [{', '.join(name for name, _ in variables)}], {match}]"
    return f'cel.bind(params, rule_params["{spec.id}"], {scope.collection}.map({scope.var}, {_bind(variables, row)}))'


def compile_rule(rule: CompiledRule) -> None:
    """Check a rule against the facts schema, then compile and translate its program."""
    _, env = cel_env()
    try:
        check_rule(rule)
    except RuleError as error:
        if error.line is None and error.file and error.field:
            error.line, error.column = _locate(error.file, error.field)
        raise
    source = program_source(rule.spec)
    try:
        rule.program = env.compile(source)
    except Exception as exc:  # cel raises plain exceptions with the parser's message
        message = str(exc).strip().splitlines()
        raise RuleError(f"expression does not compile: {' '.join(message)[:300]}", file=rule.file, field="validations") from None
    rule.fast = translated(source)


def expressions(spec: RuleSpec) -> list[tuple[str, str, str]]:
    """(field path, expression, kind) of every expression of a rule, in evaluation order."""
    pieces = [("match", spec.match, "match")] if spec.match else []
    pieces += [(f"variables[{n}].expression", v.expression, "variable") for n, v in enumerate(spec.variables)]
    pieces += [(f"validations[{n}].expression", v.expression, "validation") for n, v in enumerate(spec.validations)]
    return pieces


_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_PARAM = re.compile(r"(?<![\w.])params\s*\.\s*([A-Za-z_]\w*)")
_UNDEFINED_FIELD = re.compile(r"undefined field '(\w+)' not found in struct '[\w.]+\.(\w+)'")


@functools.lru_cache(maxsize=1)
def _typed() -> tuple[Any, dict[str, Any]]:
    """(cel module, each scope's fact type) for checking rule expressions."""
    from cel_expr_python import cel

    factschema.descriptor_pool()
    types = {scope: cel.Type(factschema.message_name(scope)) for scope in factschema.SCHEMA}
    return cel, types


def check_rule(rule: CompiledRule) -> None:
    """Compile each expression alone in the schema-typed environment, so an error names its
    own field; check its type, the parameters it reads and the message templates."""
    cel, types = _typed()
    extensions = cel_extensions()
    pool = factschema.descriptor_pool()
    spec = rule.spec
    scope = SCOPES[spec.scope]
    declared: dict[str, Any] = {
        scope.var: types[spec.scope],
        "plan": types["plan"],
        "params": cel.Type.Map(cel.Type.STRING, cel.Type.DYN),
    }
    samples: dict[str, Any] = {scope.var: sample_facts(spec.scope), "plan": sample_facts("plan"), "params": rule.params}
    variable = 0
    for field_name, expression, kind in expressions(spec):
        for name in _params_read(expression):
            if name not in spec.params:
                raise RuleError(
                    f"rule has no parameter {name!r}" + did_you_mean(name, spec.params), file=rule.file, field=field_name
                )
        env = cel.NewEnv(pool, variables=declared, extensions=extensions)
        try:
            compiled = env.compile(expression)
        except Exception as exc:  # cel raises plain exceptions carrying the checker's message
            raise RuleError(f"{_cel_message(exc)} (in `{_shorten(expression)}`)", file=rule.file, field=field_name) from None
        returned = compiled.return_type()
        if kind != "variable" and returned not in (cel.Type.BOOL, cel.Type.DYN):
            raise RuleError(f"must evaluate to a boolean, not {returned.name()}", file=rule.file, field=field_name)
        if kind == "variable":
            name = spec.variables[variable].name
            declared = {**declared, name: returned}
            samples[name] = _sample_of(cel, returned)
            variable += 1
    templates = [(f"validations[{n}].message", v.message) for n, v in enumerate(spec.validations)]
    fixes = [("remediation", spec.remediation), *((f"remediations.{d}", t) for d, t in spec.remediations.items())]
    for field_name, template in [*templates, *fixes]:
        problem = check_template(template, samples)
        if problem is not None:
            where = "message " if field_name.endswith(".message") else ""
            raise RuleError(where + problem, file=rule.file, field=field_name)


def _params_read(expression: str) -> list[str]:
    """The parameters an expression reads as `params.name`, found on its syntax tree, so a
    string never hides one; by a text search where the translator's parser refuses it."""
    from . import celcompile

    try:
        found = celcompile.fields_read(celcompile.parse(expression), "params")
    except celcompile.Unsupported:
        return _PARAM.findall(_STRING_LITERAL.sub('""', expression))
    return sorted(found or ())  # None: `params` used whole, checked when it runs


def _locate(file: str, field_name: str) -> tuple[int | None, int | None]:
    """Line and column of a field (`validations[0].expression`) in a rule file, read again:
    only ever on the way to reporting an error."""
    from pathlib import Path

    from .yamlio import load_documents, position, read_text

    path: list[str | int] = []
    for part in re.findall(r"[A-Za-z_]\w*|\[\d+\]", field_name):
        path.append(int(part[1:-1]) if part.startswith("[") else part)
    try:
        return position(load_documents(read_text(Path(file)), file)[0].data, tuple(path))
    except Exception:  # noqa: BLE001 - the position is a courtesy; the error stands without it
        return None, None


def _shorten(expression: str, limit: int = 120) -> str:
    """The expression on one line, cut to `limit` characters, for an error message."""
    flat = " ".join(expression.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _sample_of(cel: Any, cel_type: Any) -> Any:
    """A value of a rule variable's type, for checking templates; None when any will do."""
    for kind, sample in ((cel.Type.INT, 0), (cel.Type.DOUBLE, 0.0), (cel.Type.STRING, ""), (cel.Type.BOOL, False)):
        if cel_type == kind:
            return sample
    if cel_type.name().startswith("LIST"):
        return []
    return None


def _cel_message(exc: Exception) -> str:
    """The checker's first line without its `INVALID_ARGUMENT: ERROR: <input>:` preamble,
    with a did-you-mean for a misspelt fact."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for prefix in ("INVALID_ARGUMENT: ", "ERROR: "):
        first = first.removeprefix(prefix)
    message = "expression does not compile: " + first.replace("<input>:", "at ")
    undefined = _UNDEFINED_FIELD.search(first)
    if undefined:
        scope = next((s for s, m in factschema.MESSAGES.items() if m == undefined.group(2)), None)
        if scope is not None:
            message = f"{message}: {scope} has no fact {undefined.group(1)!r} (docs/facts.md)"
            message += did_you_mean(undefined.group(1), factschema.fact_names(scope))
    return message


def fact_keys(rules: Iterable[CompiledRule]) -> dict[str, frozenset[str] | None]:
    """Per collection, the fact keys the rules' programs read (None: all of them).

    Converting facts for cel-cpp costs about 130 ns per value, paid on every plan judged
    there (policy.ruleeval), so only what some program reads is handed over. What a
    program reads is found on its syntax tree (policy.celcompile, the tree its translation
    was made from), strings and shadowing variables understood: a fact left out would
    reach cel-cpp as its type's default, a silent wrong answer. A subject used other than
    as `var.key` (passed whole to a function, say), or a program the translator's parser
    does not take, keeps every key of its collection.
    """
    from . import celcompile

    keys: dict[str, set[str] | None] = {scope.collection: {"idx"} for scope in SCOPES.values()}
    for rule in rules:
        name = rule.spec.scope
        collection = SCOPES[name].collection
        found = keys[collection]
        if found is None:
            continue
        try:
            fields = celcompile.element_fields_read(celcompile.parse(program_source(rule.spec)), collection)
        except celcompile.Unsupported:
            fields = None
        if fields is None:
            keys[collection] = None
        else:
            found.update(fields & frozenset(factschema.fact_names(name)))
    return {name: frozenset(found) if found is not None else None for name, found in keys.items()}


def translated(source: str) -> Callable[..., Any] | None:
    """The program as a Python function, or None when it uses CEL the translator leaves to cel-cpp."""
    from . import celcompile

    try:
        return celcompile.program(source, VARIABLES)
    except celcompile.Unsupported:
        return None

"""The rule engine: compiles rule expressions once, judges a plan's facts with them.

Generic by design: it knows scopes (model, gpu, waiver, plan), never a rule by name.
Each rule becomes one CEL program per scope collection that returns only the
violators, so a plan costs one evaluation per rule and chunk, not one per subject:

    cel.bind(params, rule_params["<id>"],
      <subjects>.filter(<s>, <match> && <bind vars>(!(v1) || !(v2) ...))
                .map(<s>, <bind vars>([<s>.idx, [v1, v2, ...], [var1, var2, ...]])))

Expressions are compiled and type-checked when rules load, then run once against a
built-in self-check plan so that a misspelt fact or placeholder fails at start, with
the file and field, instead of during a review.

cel-cpp is the reference evaluator, but handing it a plan's facts costs more than
judging them (about 160 ns per value). So each program is also translated into a Python
function over the fact dicts (policy.celcompile) that returns only when its answer is
the one cel-cpp would give, and raises otherwise; then cel-cpp judges. A translation
that disagrees with cel-cpp on the self-check plan is dropped at load.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from .closest import did_you_mean
from .errors import RuleError
from .facts import Accounting, Fact, Facts, build_facts
from .plan import Waiver
from .findings import Finding, lower_severity
from .report import PlanReport
from .rules import RuleOverride, RuleSpec, builtin_rules_dir, load_rule_dir
from .source import PlanSource

if TYPE_CHECKING:
    from .capacity.inventory import Inventory

#: cel-cpp caps one evaluation at 10,000 comprehension steps, and building a result
#: list costs time quadratic in its length; chunks of this many subjects stay far
#: from both limits (measured: 128 is the sweet spot for 10,000-model plans).
CHUNK = 128


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
    #: The program translated to a Python function; None where the translation is not used
    #: (see policy.celcompile and `_check_translation`).
    fast: Callable[..., Any] | None = None

    @property
    def id(self) -> str:
        return self.spec.id


class _Template(string.Formatter):
    """`{gpu.committed_gb:.1f}`-style messages over fact dicts; no attribute access."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, list) and not format_spec:
            return ", ".join(str(v) for v in value) or "none"
        if isinstance(value, float) and not format_spec:
            return f"{value:g}"
        return str(format(value, format_spec))


_TEMPLATE = _Template()

#: One parsed piece of a template: literal text, then the field's path, format spec and conversion.
_Piece = tuple[str, tuple[str, ...] | None, str, str | None]


@functools.lru_cache(maxsize=4096)
def _parse_template(template: str) -> tuple[_Piece, ...]:
    """Templates are parsed once: string.Formatter re-parses in Python on every call."""
    return tuple(
        (literal, tuple(name.split(".")) if name is not None else None, spec or "", conversion)
        for literal, name, spec, conversion in _TEMPLATE.parse(template)
    )


def render(template: str, context: dict[str, Any]) -> str:
    """The template with each `{name.key:spec}` replaced from `context` (dict lookups only)."""
    out: list[str] = []
    for literal, path, spec, conversion in _parse_template(template):
        out.append(literal)
        if path is None:
            continue
        value = context[path[0]]
        for part in path[1:]:
            value = value[part]
        if conversion:
            value = _TEMPLATE.convert_field(value, conversion)
        out.append(_TEMPLATE.format_field(value, spec))
    return "".join(out)


@functools.lru_cache(maxsize=1)
def _cel() -> tuple[Any, Any]:
    from cel_expr_python import cel
    from cel_expr_python.ext import ext_bindings, ext_math, ext_strings

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
    return cel, env


def _bind(variables: Sequence[tuple[str, str]], body: str) -> str:
    for name, expression in reversed(variables):
        body = f"cel.bind({name}, {expression}, {body})"
    return body


def _program_source(spec: RuleSpec) -> str:
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


def _self_check_source(spec: RuleSpec) -> str:
    """Like the program, but evaluates everything for every subject: catches typos."""
    scope = SCOPES[spec.scope]
    variables = [(v.name, f"({v.expression})") for v in spec.variables]
    checks = [f"({v.expression})" for v in spec.validations]
    match = f"({spec.match})" if spec.match else "true"
    row = f"[{scope.var}.idx, [{', '.join(checks)}], [{', '.join(name for name, _ in variables)}], {match}]"
    return f'cel.bind(params, rule_params["{spec.id}"], {scope.collection}.map({scope.var}, {_bind(variables, row)}))'


def _as_params(params: dict[str, Any]) -> dict[str, Any]:
    """Numbers become doubles so rule arithmetic never mixes int and double."""
    return {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in params.items()}


class RuleSet:
    """Compiled rules, ready to judge plans. Build once; share between requests."""

    def __init__(self, rules: list[CompiledRule]) -> None:
        self.rules = rules
        #: Enabled rules that judge plans (not `input` rules, which readers apply).
        self.active = [r for r in rules if r.spec.enabled and r.spec.scope != "input"]
        self.by_id = {r.id: r for r in rules}
        self._rule_params = {r.id: r.params for r in rules}
        self._fact_keys = fact_keys(self.active)

    @classmethod
    def load(
        cls,
        extra_dirs: Iterable[Path] = (),
        overrides: dict[str, RuleOverride] | None = None,
        *,
        include_builtin: bool = True,
    ) -> RuleSet:
        """Read, validate, compile and self-check every rule; apply project overrides.

        A rule set identical to one loaded before is taken from the rule cache
        (see policy.rulecache), skipping schema validation, compilation and self-check.
        """
        from . import rulecache

        dirs = ([builtin_rules_dir()] if include_builtin else []) + [Path(d) for d in extra_dirs]
        overrides = overrides or {}
        key = rulecache.cache_key(dirs, {k: v.model_dump() for k, v in overrides.items()})
        cached = rulecache.read(key)
        if cached is not None:
            try:
                return cls._from_cache(cached)
            except Exception:  # a stale or foreign entry: fall back to the full load
                pass
        specs = _load_specs(dirs, overrides)
        rules = [CompiledRule(spec, file, params=_as_params(spec.params)) for spec, file in specs]
        ruleset = cls(rules)
        ruleset._compile()
        if not ruleset._self_check():
            # A translation check cut short by the process's own limits (memory, recursion)
            # says nothing about the rule: not cached, or every later run would judge
            # without the translation, at several times the memory.
            return ruleset
        rulecache.write(
            key,
            [
                {
                    "spec": r.spec.model_dump(),
                    "file": r.file,
                    "program": r.program.serialize() if r.program else None,
                    # Whether the translation agreed with cel-cpp; never its text, which
                    # is Python and is rebuilt from the rule on load (a cache file runs no code).
                    "translated": r.fast is not None,
                }
                for r in rules
            ],
        )
        return ruleset

    @classmethod
    def _from_cache(cls, entries: list[dict[str, Any]]) -> RuleSet:
        _, env = _cel()
        rules = []
        for entry in entries:
            spec = RuleSpec.model_validate(entry["spec"])
            rule = CompiledRule(spec, entry["file"], params=_as_params(spec.params))
            if entry["program"] is not None:
                rule.program = env.deserialize(entry["program"])
            if entry["translated"] and rule.program is not None:
                rule.fast = _translated(_program_source(spec))
            rules.append(rule)
        return cls(rules)

    def severity(self, rule_id: str, default: str = "error") -> str:
        rule = self.by_id.get(rule_id)
        return rule.spec.severity if rule else default

    def enabled(self, rule_id: str) -> bool:
        rule = self.by_id.get(rule_id)
        return rule.spec.enabled if rule else True

    def _compile(self) -> None:
        _, env = _cel()
        for rule in self.active:
            _check_expressions(rule)
            source = _program_source(rule.spec)
            rule.program = _compile(env, source, rule)
            rule.fast = _translated(source)

    def _self_check(self) -> bool:
        """Run every expression and template once on a plan that has every kind of subject.

        False when some translation check could not finish (see `_check_translation`)."""
        settled = True
        _, env = _cel()
        facts = _self_check_facts()
        collections = facts.collections()
        data = {**collections, "plan": facts.plan, "rule_params": self._rule_params}
        for rule in self.active:
            program = _compile(env, _self_check_source(rule.spec), rule)
            scope = SCOPES[rule.spec.scope]
            try:
                result = _plain(program.eval(data=data), rule)
            except RuleError as error:
                raise _pinpoint(rule, env, data) or error from None
            settled = self._check_translation(rule, data, result) and settled
            for idx, passes, values, matched in result:
                if not isinstance(matched, bool) or any(not isinstance(p, bool) for p in passes):
                    raise RuleError("a validation or `match` does not evaluate to a boolean", file=rule.file, field="validations")
                subject = collections[scope.collection][idx]
                context = self._context(rule, scope, subject, values, facts.plan)
                for n, validation in enumerate(rule.spec.validations):
                    try:
                        render(validation.message, context)
                    except (KeyError, IndexError, ValueError, TypeError) as exc:
                        raise RuleError(f"message placeholder {exc} is not a known value", file=rule.file, field=f"validations[{n}].message") from None
                try:
                    render(rule.spec.remediation, context)
                except (KeyError, IndexError, ValueError, TypeError) as exc:
                    raise RuleError(f"placeholder {exc} is not a known value", file=rule.file, field="remediation") from None
        return settled

    @staticmethod
    def _check_translation(rule: CompiledRule, data: dict[str, Any], self_checked: Any) -> bool:
        """Keep the Python translation only if it answers the self-check plan as cel-cpp does.

        Both the rule's program and its self-check form (every expression on every
        subject, `self_checked` from cel-cpp) are compared: few rules find a violation on
        the self-check plan, but every expression there has a value. Returns False when
        the check ran out of memory or recursion depth rather than finding an answer.
        """
        if rule.fast is None:
            return True
        settled = True
        try:
            expected = _plain(rule.program.eval(data=data), rule)
            every_expression = _translated(_self_check_source(rule.spec))
            agrees = (
                every_expression is not None
                and _same(rule.fast(**data), expected)
                and _same(every_expression(**data), self_checked)
            )
        except (MemoryError, RecursionError):  # the process's limits, not the translation's
            agrees = settled = False
        except Exception:  # noqa: BLE001 - a translation that cannot judge this plan is not kept
            agrees = False
        if not agrees:
            rule.fast = None
        return settled

    def _context(self, rule: CompiledRule, scope: Scope, subject: Fact, values: list[Any], plan: Fact) -> dict[str, Any]:
        context: dict[str, Any] = {"plan": plan, scope.var: subject, "params": rule.params}
        context.update(zip((v.name for v in rule.spec.variables), values))
        return context

    def judge(
        self,
        source: PlanSource,
        accounting: Accounting | None = None,
        extra_waivers: Sequence[Waiver] = (),
        facts: Facts | None = None,
        inventory: Inventory | None = None,
        strict_capacity: bool = False,
    ) -> PlanReport:
        """Every finding for one plan, waivers applied; `inventory` is the real capacity, if any."""
        plan = source.plan
        if extra_waivers:
            plan = plan.model_copy(update={"waivers": [*plan.waivers, *extra_waivers]})
        facts = facts or build_facts(plan, accounting, inventory=inventory, strict_capacity=strict_capacity)
        report = PlanReport(name=plan.metadata.name, file=source.file, facts=facts)
        report.findings.extend(source.findings)
        collections = facts.collections()
        for rule, rows, error in self._evaluate(facts):
            if error is not None:
                # Fail closed: a rule that cannot judge this plan is an error, not a pass.
                report.findings.append(
                    Finding(
                        rule=rule.id,
                        severity="error",
                        message=f"rule could not be evaluated on this plan: {error}",
                        file=source.file,
                        line=source.line,
                        fix=f"check the rule file {rule.file}",
                        plan=plan.metadata.name,
                    )
                )
                continue
            if not rows:
                continue
            scope = SCOPES[rule.spec.scope]
            subjects = collections[scope.collection]
            for idx, passes, values in rows:
                subject = subjects[idx]
                context = self._context(rule, scope, subject, values, facts.plan)
                for validation, passed in zip(rule.spec.validations, passes):
                    if passed is True:
                        continue
                    file, line, column = source.locate(scope.position_kind, subject.get(scope.name_key), validation.field)
                    report.findings.append(
                        Finding(
                            rule=rule.id,
                            severity=lower_severity(rule.spec.severity, validation.severity),
                            message=render(validation.message, context),
                            model=subject.get(scope.model_key) or None if scope.model_key else None,
                            gpu=subject.get(scope.gpu_key) or None if scope.gpu_key else None,
                            file=file,
                            line=line,
                            column=column,
                            fix=render(rule.spec.remediation, context),
                            plan=plan.metadata.name,
                        )
                    )
        _apply_waivers(report.findings, plan.waivers, facts.plan["today"], n_own=len(source.plan.waivers))
        return report

    def _evaluate(self, facts: Facts) -> Iterable[tuple[CompiledRule, list[list[Any]], str | None]]:
        """Each active rule's rows (subject index, validation results, variables), or its error."""
        chunks = self._chunks(facts)
        activations: list[Any] = []
        for rule in self.active:
            if rule.fast is not None:
                try:
                    if len(chunks) == 1:
                        yield rule, rule.fast(*chunks[0]), None
                    else:
                        yield rule, [row for chunk in chunks for row in rule.fast(*chunk)], None
                    continue
                except Exception:  # noqa: BLE001 - not an answer the translation vouches for: cel-cpp decides
                    pass
            if not activations:
                activations = self._activations(chunks)
            rows: list[list[Any]] = []
            try:
                for activation in activations:
                    rows.extend(_plain(_eval(rule.program, activation), rule))
            except RuleError as exc:
                yield rule, [], exc.message
                continue
            yield rule, rows, None

    def _chunks(self, facts: Facts) -> list[tuple[Any, ...]]:
        """The VARIABLES of each chunk of CHUNK subjects, so no evaluation nears CEL's step limit."""
        longest = max(len(facts.models), len(facts.gpus), len(facts.waivers))
        if longest <= CHUNK:
            return [(facts.models, facts.gpus, facts.waivers, [facts.plan], facts.plan, self._rule_params)]
        return [
            (
                facts.models[k : k + CHUNK],
                facts.gpus[k : k + CHUNK],
                facts.waivers[k : k + CHUNK],
                [facts.plan] if k == 0 else [],
                facts.plan,
                self._rule_params,
            )
            for k in range(0, longest, CHUNK)
        ]

    def _activations(self, chunks: list[tuple[Any, ...]]) -> list[Any]:
        """The chunks as cel-cpp activations, holding only the fact keys rules read."""
        _, env = _cel()
        keys = self._fact_keys
        return [
            env.Activation(
                {
                    "models": _project(models, keys["models"]),
                    "gpus": _project(gpus, keys["gpus"]),
                    "waivers": _project(waivers, keys["waivers"]),
                    "plans": _project(plans, keys["plans"]),
                    "plan": plan,
                    "rule_params": rule_params,
                }
            )
            for models, gpus, waivers, plans, plan, rule_params in chunks
        ]


def _load_specs(dirs: list[Path], overrides: dict[str, RuleOverride]) -> list[tuple[RuleSpec, str]]:
    """Every rule of `dirs`, ids unique, with the project's overrides applied."""
    specs: dict[str, tuple[RuleSpec, str]] = {}
    for directory in dirs:
        for spec, file in load_rule_dir(directory):
            if spec.id in specs:
                raise RuleError(f"rule id {spec.id!r} is already defined in {specs[spec.id][1]}", file=file, field="id")
            specs[spec.id] = (spec, file)
    for rule_id, override in overrides.items():
        if rule_id not in specs:
            raise RuleError(
                f"no rule {rule_id!r} to configure" + did_you_mean(rule_id, specs),
                field=f"rules.{rule_id}",
            )
        spec, file = specs[rule_id]
        unknown = set(override.params) - set(spec.params)
        if unknown:
            name = sorted(unknown)[0]
            raise RuleError(
                f"rule {rule_id!r} has no parameter {name!r}" + did_you_mean(name, spec.params),
                field=f"rules.{rule_id}.params.{name}",
            )
        update: dict[str, Any] = {"params": {**spec.params, **override.params}}
        if override.severity is not None:
            update["severity"] = override.severity
        if override.enabled is not None:
            update["enabled"] = override.enabled
        specs[rule_id] = (spec.model_copy(update=update), file)
    return list(specs.values())


def _expressions(spec: RuleSpec) -> list[tuple[str, str, str]]:
    """(field path, expression, kind) of every expression of a rule, in evaluation order."""
    pieces = [("match", spec.match, "match")] if spec.match else []
    pieces += [(f"variables[{n}].expression", v.expression, "variable") for n, v in enumerate(spec.variables)]
    pieces += [(f"validations[{n}].expression", v.expression, "validation") for n, v in enumerate(spec.validations)]
    return pieces


_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')


def fact_keys(rules: Iterable[CompiledRule]) -> dict[str, frozenset[str] | None]:
    """Per collection, the fact keys the rules' expressions read (None: all of them).

    Converting facts into the expression engine costs about 130 ns per value and is
    paid on every plan, so only what some expression reads is handed over. A scope
    variable used other than as `var.key` (passed whole to a function, say) keeps
    every key of its collection.
    """
    keys: dict[str, set[str] | None] = {scope.collection: {"idx"} for scope in SCOPES.values()}
    for rule in rules:
        scope = SCOPES[rule.spec.scope]
        for _, expression, _ in _expressions(rule.spec):
            code = _STRING_LITERAL.sub('""', expression)
            for other in SCOPES.values():
                if other.var == "plan" and scope.var != "plan":
                    continue  # the top-level `plan` is one small map, never projected
                found = keys[other.collection]
                var = rf"(?<![\w.]){other.var}\b"  # the variable itself, not a field of that name
                if found is None or not re.search(var, code):
                    continue
                if re.search(rf"{var}(?!\s*\.\s*[A-Za-z_])", code):
                    keys[other.collection] = None
                else:
                    found.update(re.findall(rf"{var}\s*\.\s*([A-Za-z_]\w*)", code))
    return {name: frozenset(found) if found is not None else None for name, found in keys.items()}


def _project(items: list[Fact], keys: frozenset[str] | None) -> list[Fact]:
    if keys is None:
        return items
    try:
        return [{key: item[key] for key in keys} for item in items]
    except KeyError:  # a rule reads a fact some subject lacks: let the engine report it
        return items


def _check_expressions(rule: CompiledRule) -> None:
    """Compile each expression alone, so an error names its own field, and check its type."""
    cel, _ = _cel()
    spec = rule.spec
    scope = SCOPES[spec.scope]
    mapping = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
    declared: dict[str, Any] = {scope.var: mapping, "params": mapping, "plan": mapping}
    from cel_expr_python.ext import ext_math, ext_strings

    extensions = [ext_math.ExtMath(), ext_strings.ExtStrings()]
    names = [v.name for v in spec.variables]
    for field_name, expression, kind in _expressions(spec):
        boolean = kind != "variable"
        env = cel.NewEnv(variables=declared, extensions=extensions)
        try:
            compiled = env.compile(expression)
        except Exception as exc:  # cel raises plain exceptions carrying the checker's message
            raise RuleError(_cel_message(exc), file=rule.file, field=field_name) from None
        returned = compiled.return_type()
        if boolean and returned not in (cel.Type.BOOL, cel.Type.DYN):
            raise RuleError(f"must evaluate to a boolean, not {returned.name()}", file=rule.file, field=field_name)
        if field_name.startswith("variables["):
            declared = {**declared, names[int(field_name[10:].split("]")[0])]: cel.Type.DYN}


def _pinpoint(rule: CompiledRule, env: Any, data: dict[str, Any]) -> RuleError | None:
    """Which expression of a rule fails on the self-check plan (e.g. a misspelt fact)."""
    spec = rule.spec
    scope = SCOPES[spec.scope]
    bound: list[tuple[str, str]] = []
    for field_name, expression, _ in _expressions(spec):
        source = (
            f'cel.bind(params, rule_params["{spec.id}"], '
            f"{scope.collection}.map({scope.var}, {_bind(bound, f'({expression})')}))"
        )
        value = env.compile(source).eval(data=data)
        if value.type() == _cel()[0].Type.ERROR:
            return RuleError(f"fails on the self-check plan: {value.plain_value()}", file=rule.file, field=field_name)
        if field_name.startswith("variables["):
            bound.append((spec.variables[len(bound)].name, f"({expression})"))
    return None


def _same(a: Any, b: Any) -> bool:
    """Equal in value and in type all the way down: `True == 1` in Python, never in CEL;
    -0.0 and 0.0 print differently; map keys are compared with their types."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        ours, theirs = sorted(a.items(), key=repr), sorted(b.items(), key=repr)
        return len(ours) == len(theirs) and all(_same(x, y) for x, y in zip(ours, theirs))
    if isinstance(a, float):
        return repr(a) == repr(b)
    return bool(a == b)


def _translated(source: str) -> Callable[..., Any] | None:
    """The program as a Python function, or None when it uses CEL the translator leaves to cel-cpp."""
    from . import celcompile

    try:
        return celcompile.load(celcompile.translate(source, VARIABLES), VARIABLES)
    except celcompile.Unsupported:
        return None


def _cel_message(exc: Exception) -> str:
    """The checker's first line without its `INVALID_ARGUMENT: ERROR: <input>:` preamble."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for prefix in ("INVALID_ARGUMENT: ", "ERROR: "):
        first = first.removeprefix(prefix)
    return "expression does not compile: " + first.replace("<input>:", "at ")


def _compile(env: Any, source: str, rule: CompiledRule) -> Any:
    try:
        return env.compile(source)
    except Exception as exc:  # cel raises plain exceptions with the parser's message
        message = str(exc).strip().splitlines()
        raise RuleError(f"expression does not compile: {' '.join(message)[:300]}", file=rule.file, field="validations") from None


def _eval(program: Any, activation: Any) -> Any:
    """cel-cpp's value; limits it enforces by raising (comprehension steps) become errors too."""
    try:
        return program.eval(activation)
    except Exception as exc:  # noqa: BLE001 - cel raises plain exceptions for exhausted limits
        raise RuleError(f"evaluation failed: {exc}") from None


def _plain(value: Any, rule: CompiledRule) -> Any:
    cel, _ = _cel()
    if value.type() == cel.Type.ERROR:
        raise RuleError(f"evaluation failed: {value.plain_value()}", file=rule.file, field="validations")
    return value.plain_value()


def _apply_waivers(findings: list[Finding], waivers: Sequence[Waiver], today: str, n_own: int) -> None:
    """Mark findings an unexpired waiver covers; the first `n_own` waivers are the plan's
    own (reported as in-source suppressions), the rest come from the project config."""
    active = [(n, w) for n, w in enumerate(waivers) if not (w.expires and w.expires.isoformat() < today)]
    for finding in findings:
        for n, waiver in active:
            if (
                waiver.rule == finding.rule
                and (waiver.model is None or waiver.model == finding.model)
                and (waiver.gpu is None or waiver.gpu == finding.gpu)
            ):
                finding.waived = True
                finding.waiver_reason = waiver.reason
                finding.waiver_source = "plan" if n < n_own else "config"
                break


@functools.lru_cache(maxsize=1)
def _self_check_facts() -> Facts:
    from .readers.native import read_plan_file

    path = Path(__file__).with_name("data") / "selfcheck-plan.yaml"
    sources = read_plan_file(path)
    return build_facts(sources[0].plan, Accounting())


__all__ = ["RuleSet", "CompiledRule", "render", "SCOPES"]

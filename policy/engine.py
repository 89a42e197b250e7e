"""The rule engine: loads rules, judges a plan's facts with them, and turns the violators
into findings with messages, positions and waivers.

Generic by design: it knows scopes (model, gpu, waiver, plan), never a rule by name.
Its parts, one job each: rule files and overrides (policy.rules), the facts schema
(policy.factschema), compiling and type-checking (policy.rulecompile), evaluating
(policy.ruleeval), messages (policy.messages) and the rule cache (policy.rulecache).
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .facts import Fact, Facts, build_facts
from .findings import Finding, lower_severity
from .messages import render
from .plan import Waiver
from .report import PlanReport
from .rulecompile import SCOPES, CompiledRule, Scope, as_params, cel_env, compile_rule, fact_keys, program_source, translated
from .ruleeval import evaluate
from .rules import RuleOverride, RuleSpec, builtin_rules_dir, load_specs
from .settings import Accounting
from .source import PlanSource
from .unmatched_waivers import unmatched_waivers
from .waivers import expired, waives

if TYPE_CHECKING:
    from .capacity.inventory import Inventory


class RuleSet:
    """Compiled rules, ready to judge plans. Build once; share between requests."""

    def __init__(self, rules: list[CompiledRule]) -> None:
        self.rules = rules
        #: Enabled rules that judge plans (not `input` rules, which readers apply).
        self.active = [r for r in rules if r.spec.enabled and r.spec.scope != "input"]
        self.by_id = {r.id: r for r in rules}
        self._rule_params = {r.id: r.params for r in rules}
        self._scopes = {r.id: r.spec.scope for r in rules}

    @classmethod
    def load(
        cls,
        extra_dirs: Iterable[Path] = (),
        overrides: dict[str, RuleOverride] | None = None,
        *,
        include_builtin: bool = True,
    ) -> RuleSet:
        """Read, validate, type-check and compile every rule; apply project overrides.

        A rule set identical to one loaded before is taken from the rule cache
        (see policy.rulecache), skipping schema validation, checking and compilation.
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
        rules = [CompiledRule(spec, file, params=as_params(spec.params)) for spec, file in load_specs(dirs, overrides)]
        for rule in rules:
            if rule.spec.enabled and rule.spec.scope != "input":
                compile_rule(rule)
        rulecache.write(
            key,
            [
                {
                    "spec": r.spec.model_dump(),
                    "file": r.file,
                    # Never the translation: it is Python, rebuilt from the rule on every
                    # load (a cache file runs no code), and a translation cut short by this
                    # process's own limits (memory, recursion) is then never remembered.
                    "program": r.program.serialize() if r.program else None,
                }
                for r in rules
            ],
        )
        return cls(rules)

    @classmethod
    def _from_cache(cls, entries: list[dict[str, Any]]) -> RuleSet:
        rules = []
        for entry in entries:
            spec = RuleSpec.model_validate(entry["spec"])
            rule = CompiledRule(spec, entry["file"], params=as_params(spec.params))
            if entry["program"] is not None:
                rule.program = _CachedProgram(entry["program"])
            if rule.program is not None:
                rule.fast = translated(program_source(spec))
            rules.append(rule)
        return cls(rules)

    @functools.cached_property
    def _fact_keys(self) -> dict[str, frozenset[str] | None]:
        """The fact keys the rules read (rulecompile.fact_keys): worked out the first time
        cel-cpp judges a plan, which a translated rule set seldom needs."""
        return fact_keys(self.active)

    @property
    def untranslated(self) -> list[str]:
        """Active rules the translator refused at load (CEL outside celcompile.SUBSET):
        cel-cpp judges them on every plan. (policy.ruleeval.FALLBACKS counts the times
        a translated rule handed a plan over.)"""
        return [r.id for r in self.active if r.fast is None]

    def severity(self, rule_id: str, default: str = "error") -> str:
        rule = self.by_id.get(rule_id)
        return rule.spec.severity if rule else default

    def enabled(self, rule_id: str) -> bool:
        rule = self.by_id.get(rule_id)
        return rule.spec.enabled if rule else True

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
        for rule, rows, error in evaluate(self.active, facts, self._rule_params, lambda: self._fact_keys):
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
                            fix=render(_remediation(rule.spec, source, scope, subject), context),
                            plan=plan.metadata.name,
                        )
                    )
        _apply_waivers(report.findings, plan.waivers, facts.plan["today"], n_own=len(source.plan.waivers))
        for finding in unmatched_waivers(source, source.plan.waivers, facts, report.findings, self._scopes):
            checker = self.by_id.get(finding.rule)  # its rule file sets severity and on/off
            if checker is None or checker.spec.enabled:
                finding.severity = checker.spec.severity if checker else finding.severity
                report.findings.append(finding)
        return report


class _CachedProgram:
    """A compiled program read back from the rule cache, deserialized when first run: a
    translated rule seldom needs cel-cpp, and the pre-commit path then never builds its
    environment."""

    __slots__ = ("_serialized", "_program")

    def __init__(self, serialized: bytes) -> None:
        self._serialized = serialized
        self._program: Any = None

    def eval(self, *args: Any, **kwargs: Any) -> Any:
        if self._program is None:
            self._program = cel_env()[1].deserialize(self._serialized)
        return self._program.eval(*args, **kwargs)

    def serialize(self) -> bytes:
        return self._serialized


def _remediation(spec: RuleSpec, source: PlanSource, scope: Scope, subject: Fact) -> str:
    """The rule's fix hint in the language of the input the subject was read from."""
    if not spec.remediations:
        return spec.remediation
    dialect = source.dialect_of(scope.position_kind, subject.get(scope.name_key))
    for name, text in spec.remediations.items():
        if name == dialect:
            return text
    return spec.remediation


def _apply_waivers(findings: list[Finding], waivers: Sequence[Waiver], today: str, n_own: int) -> None:
    """Mark findings an unexpired waiver covers; the first `n_own` waivers are the plan's
    own (reported as in-source suppressions), the rest come from the project config."""
    day = dt.date.fromisoformat(today)
    active = [(n, w) for n, w in enumerate(waivers) if not expired(w, day)]
    for finding in findings:
        for n, waiver in active:
            if waives(waiver, finding.rule, finding.model, finding.gpu):
                finding.waived = True
                finding.waiver_reason = waiver.reason
                finding.waiver_source = "plan" if n < n_own else "config"
                break


__all__ = ["RuleSet", "CompiledRule", "render", "SCOPES"]

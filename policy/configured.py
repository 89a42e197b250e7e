"""Findings readers make, passed through the rule configuration like any other.

Readers report some findings themselves (`schema` for unusable input, `memory-declared`
when a Triton model's memory is estimated from its files, `repository-read` when a
model repository was not read). A project config's `rules:` entry applies to them as it
does to the findings rules compute:

- `enabled: false` drops them;
- a rule's severity is the most its findings can have: a reader-made finding above it
  is lowered to it, one below keeps its own (an info note stays a note), exactly as a
  validation's own `severity` is treated.

Some overrides would wave through what must never pass silently; a rule file lists
those under `locked`, each with the reason, and a config that makes one is refused when
the rules load (one line: the field and why). Nothing in the config is accepted and
then ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping

from .errors import RuleError
from .findings import SEVERITY_RANK, Finding, Severity

if TYPE_CHECKING:
    from .rules import RuleOverride, RuleSpec


def refuse_locked(overrides: Mapping[str, RuleOverride], specs: Mapping[str, RuleSpec]) -> None:
    """A RuleError for the first override a rule file locks."""
    for rule_id, override in overrides.items():
        spec = specs.get(rule_id)
        if spec is None:
            continue
        for key in ("enabled", "severity"):
            value = getattr(override, key)
            if value is None or key not in spec.locked:
                continue
            if key == "enabled" and value is True:
                continue  # enabling an enabled rule changes nothing
            verb = "cannot be disabled" if key == "enabled" else "keeps its own severities"
            raise RuleError(f"{rule_id} {verb}: {spec.locked[key]}", field=f"rules.{rule_id}.{key}")


def configured(findings: Iterable[Finding], specs: Mapping[str, RuleSpec]) -> list[Finding]:
    """Reader-made `findings` with their rules' configuration applied."""
    out: list[Finding] = []
    for finding in findings:
        spec = specs.get(finding.rule)
        if spec is None:  # a rule gpuadmit does not know: reported as made
            out.append(finding)
            continue
        if not spec.enabled:
            continue
        if "severity" not in spec.locked and SEVERITY_RANK[finding.severity] > SEVERITY_RANK[spec.severity]:
            finding = _with_severity(finding, spec.severity)
        out.append(finding)
    return out


def _with_severity(finding: Finding, severity: Severity) -> Finding:
    from dataclasses import replace

    return replace(finding, severity=severity)

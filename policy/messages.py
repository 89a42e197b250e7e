"""Messages and fix hints: rule templates filled in from facts, and checked when rules load.

A template is Python format syntax over dict lookups only: `{gpu.committed_gb:.1f}`,
`{params.warn_pct:g}`, `{overflow_gb:.1f}` (a rule variable). No attribute access and no
calls, so a rule file cannot reach into Python.
"""

from __future__ import annotations

import functools
import string
from typing import Any

from .closest import did_you_mean
from .factschema import BOOL, DOUBLE, INT, SCHEMA, STRING, STRINGS


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


#: A value of each fact type, to try a template's format specs on.
_SAMPLES: dict[str, Any] = {INT: 0, DOUBLE: 0.0, BOOL: False, STRING: "", STRINGS: []}


def sample_facts(scope: str) -> dict[str, Any]:
    """A fact dict of `scope` with a value of the right type for every fact."""
    return {fact.name: _SAMPLES[fact.type] for fact in SCHEMA[scope]}


def check_template(template: str, context: dict[str, Any]) -> str | None:
    """Why `template` cannot be filled in from a context shaped like `context`, or None.

    `context` holds sample values: fact dicts from `sample_facts`, the rule's params, and
    a sample of each rule variable's type (None where the type has no sample: such a
    placeholder is checked by name only).
    """
    try:
        pieces = _parse_template(template)
    except ValueError as exc:
        return f"is not a valid template: {exc}"
    for _, path, spec, conversion in pieces:
        if path is None:
            continue
        placeholder = ".".join(path)
        if path[0] not in context:
            return f"placeholder {{{placeholder}}} is not a known value" + did_you_mean(path[0], context)
        value = context[path[0]]
        for part in path[1:]:
            if not isinstance(value, dict):
                if value is None:  # a rule variable of a type without a sample
                    break
                return f"placeholder {{{placeholder}}} is not a known value"
            if part not in value:
                return f"placeholder {{{placeholder}}} is not a known value" + did_you_mean(part, value)
            value = value[part]
        if value is None:
            continue
        try:
            if conversion:
                value = _TEMPLATE.convert_field(value, conversion)
            _TEMPLATE.format_field(value, spec)
        except (ValueError, TypeError) as exc:
            return f"placeholder {{{placeholder}}}: format {spec!r} does not apply ({exc})"
    return None

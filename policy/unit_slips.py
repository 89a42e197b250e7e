"""Hints for numbers written in the wrong unit: `80GB` where GiB are a plain number,
`81920` (MiB, as NVML and GPU Feature Discovery report memory) where GiB are meant,
`200ms` where milliseconds are a plain number.

Imports nothing of gpuadmit: readers and the config loader all use it.
"""

from __future__ import annotations

import re

#: GiB per unit a memory figure may be written in.
_MEMORY_UNITS = {
    "gib": 1.0,
    "gb": 1.0,
    "g": 1.0,
    "gi": 1.0,
    "mib": 1 / 1024,
    "mb": 1 / 1024,
    "mi": 1 / 1024,
    "m": 1 / 1024,
    "tib": 1024.0,
    "tb": 1024.0,
    "ti": 1024.0,
    "t": 1024.0,
}
_TIME_UNITS = {"ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001}
_NUMBER_WITH_UNIT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Zµ]+)\s*$")
#: Largest GiB figure a plan accepts (plan.MAX_GPU_GB); a larger one is likely MiB.
MAX_GIB = 4096.0


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0") if abs(value - round(value, 1)) < 1e-9 else f"{value:.2f}"


def unit_hint(field: str, value: object) -> str:
    """A short hint ("give GiB as a number: 80") when `value` of `field` looks like a unit slip, else ""."""
    name = field.rsplit(".", 1)[-1].replace("-", "_")
    if name.endswith("_gb"):
        return _memory_hint(value)
    if name.endswith("_ms"):
        return _time_hint(value)
    return ""


def _memory_hint(value: object) -> str:
    if isinstance(value, str):
        match = _NUMBER_WITH_UNIT.match(value)
        if match and match.group(2).lower() in _MEMORY_UNITS:
            gib = float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()]
            return f"give GiB as a number: {_number(gib)}"
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and MAX_GIB < value <= MAX_GIB * 1024:
        return f"looks like MiB: {_number(value / 1024)} GiB?"
    return ""


def _time_hint(value: object) -> str:
    if isinstance(value, str):
        match = _NUMBER_WITH_UNIT.match(value)
        if match and match.group(2).lower() in _TIME_UNITS:
            ms = float(match.group(1)) * _TIME_UNITS[match.group(2).lower()]
            return f"give milliseconds as a number: {_number(ms)}"
    return ""

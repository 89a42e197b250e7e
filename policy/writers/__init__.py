"""Writers print a Report; they never compute a verdict. One module per format."""

from __future__ import annotations

import importlib
from typing import Protocol

from ..report import Report

FORMATS = ("text", "json", "sarif", "github", "junit", "markdown")


class Writer(Protocol):
    def __call__(self, report: Report, *, color: bool = False) -> str: ...


def render(report: Report, fmt: str, *, color: bool = False) -> str:
    """The report in `fmt`; modules load on demand so a text run imports no XML or SARIF code."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    module = importlib.import_module(f".{fmt}", __name__)
    writer: Writer = module.write
    return writer(report, color=color)

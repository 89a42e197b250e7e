"""Triton model repositories to plans. (Arrives with the Triton reader.)"""

from __future__ import annotations

from pathlib import Path

from ..source import PlanSource


def read(path: Path) -> list[PlanSource]:
    return []

"""Machine-readable output: every finding and each GPU's memory summary."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from ..report import Report


def to_dict(report: Report) -> dict[str, Any]:
    return {
        "summary": report.counts(),
        "findings": [f.to_dict() for f in report.findings],
        "plans": [
            {
                "name": plan.name,
                "file": plan.file,
                "gpus": [{**asdict(gpu), "models": [{"name": n, "gb": gb} for n, gb in gpu.models]} for gpu in plan.gpus],
            }
            for plan in report.plans
        ],
    }


def write(report: Report, *, color: bool = False) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"

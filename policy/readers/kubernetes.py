"""Kubernetes objects to plans. (GPU workloads arrive with the Kubernetes reader.)"""

from __future__ import annotations

from typing import Any

from ..source import PlanSource
from ..yamlio import Document


def is_object(data: Any) -> bool:
    return isinstance(data, dict) and "apiVersion" in data and "kind" in data


def read_objects(docs: list[Document], file: str, default_name: str = "plan") -> list[PlanSource]:
    return []

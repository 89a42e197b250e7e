"""The GPU catalog: product names (and their many spellings) to memory and MIG profiles.

The data lives in `data/gpus.yaml` so that adding a product is a data change.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CATALOG_FILE = Path(__file__).with_name("data") / "gpus.yaml"
MIB_PER_GIB = 1024


@dataclass(frozen=True)
class Product:
    name: str
    memory_mib: int
    mig: dict[str, int] = field(default_factory=dict)
    compute_slices: int = 7
    memory_slices: int = 8

    @property
    def memory_gb(self) -> float:
        return self.memory_mib / MIB_PER_GIB


@functools.lru_cache(maxsize=1024)  # every plan names its products again; the regex is the cost
def _key(name: str) -> str:
    """Spelling-insensitive key: 'NVIDIA H100 80GB HBM3' == 'nvidia-h100-80gb-hbm3'."""
    key = re.sub(r"[^a-z0-9.]+", "", name.lower())
    key = key.removeprefix("nvidia").removeprefix("tesla")
    return key.removesuffix("shared")  # GFD appends -SHARED under time-slicing


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, Product]:
    raw = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    index: dict[str, Product] = {}
    for name, entry in raw["products"].items():
        product = Product(
            name=name,
            memory_mib=int(entry["memory_mib"]),
            mig={str(k): int(v) for k, v in (entry.get("mig") or {}).items()},
            compute_slices=int(entry.get("compute_slices", 7)),
            memory_slices=int(entry.get("memory_slices", 8)),
        )
        for alias in [name, *entry.get("aliases", [])]:
            index[_key(alias)] = product
    return index


def lookup(name: str | None) -> Product | None:
    """The catalog entry for a product name as a user, NVML or GFD spells it, or None."""
    if not name:
        return None
    return _index().get(_key(name))


def products() -> list[Product]:
    return sorted({p.name: p for p in _index().values()}.values(), key=lambda p: p.memory_mib)


def mig_profile_memory_gb(profile: str) -> float:
    """Nominal memory of a MIG profile: `3g.40gb` -> 40.0 (`+me` media extensions ignored)."""
    memory = profile.partition(".")[2].removesuffix("gb").replace("+me", "")
    return float(memory)


def mig_profile_compute_slices(profile: str) -> int:
    return int(profile.partition("g")[0])

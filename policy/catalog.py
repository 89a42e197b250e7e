"""The GPU catalog: product names (and their many spellings) to memory and MIG profiles.

The data lives in `data/gpus.yaml` so that adding a product is a data change. Every
figure there carries its source; docs/SOURCES.md collects them.

A name resolves only when it names one product: `A100` fits the 40 GB and the 80 GB
card, so `resolve("A100")` says so instead of picking one, and an unknown name comes
back with the closest catalog spelling.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .closest import closest

CATALOG_FILE = Path(__file__).with_name("data") / "gpus.yaml"
MIB_PER_GIB = 1024


@dataclass(frozen=True)
class Product:
    name: str
    memory_mib: int
    #: MIG profile -> the most instances of it one GPU holds.
    mig: dict[str, int] = field(default_factory=dict)
    compute_slices: int = 7
    memory_slices: int = 8
    #: A MIG slice's memory as NVML reports it (GiB), by the memory slices it holds.
    mig_memory_gib: dict[int, float] = field(default_factory=dict)
    source: str = ""
    mig_memory_source: str = ""

    @property
    def memory_gb(self) -> float:
        return self.memory_mib / MIB_PER_GIB

    @functools.cached_property
    def _full_profile_gb(self) -> float:
        """The memory in the name of the profile that takes the whole GPU (7g.80gb -> 80)."""
        return max((mig_profile_memory_gb(p) for p in self.mig), default=0.0)

    def mig_memory_slices(self, profile: str) -> int:
        """Memory slices a profile holds: its named memory as a share of the whole GPU's."""
        full = self._full_profile_gb
        if not full:
            return 0
        return max(1, round(mig_profile_memory_gb(profile) / full * self.memory_slices))

    def mig_slice_gb(self, profile: str) -> float:
        """A slice's real memory (what NVML reports), falling back to the name's number."""
        real = self.mig_memory_gib.get(self.mig_memory_slices(profile))
        return real if real is not None else mig_profile_memory_gb(profile)


@dataclass(frozen=True)
class Resolution:
    """What a product name resolves to.

    `status` is "known" (one product), "ambiguous" (several: `candidates`), "unknown"
    (none: `suggestion` is the closest catalog spelling, or "") or "absent" (no name).
    """

    status: str
    product: Product | None = None
    candidates: tuple[Product, ...] = ()
    suggestion: str = ""

    @property
    def hint(self) -> str:
        """What to tell the user: the variants to choose from, or a did-you-mean."""
        if self.status == "ambiguous":
            return "name the variant: " + ", ".join(f"{p.name} ({p.memory_gb:.1f} GiB)" for p in self.candidates)
        if self.status == "unknown":
            if self.suggestion:
                return f"did you mean {self.suggestion}? (`gpuadmit catalog` lists the products)"
            return "`gpuadmit catalog` lists the products"
        return ""


@functools.lru_cache(maxsize=1024)  # every plan names its products again; the regex is the cost
def _key(name: str) -> str:
    """Spelling-insensitive key: 'NVIDIA H100 80GB HBM3' == 'nvidia-h100-80gb-hbm3'."""
    key = re.sub(r"[^a-z0-9.]+", "", name.lower())
    key = key.removeprefix("nvidia").removeprefix("tesla")
    return key.removesuffix("shared")  # GFD appends -SHARED under time-slicing


@dataclass(frozen=True)
class _Catalog:
    by_key: dict[str, Product]
    ambiguous: dict[str, tuple[Product, ...]]
    #: key -> the spellings the catalog gives for it, for did-you-mean.
    spellings: dict[str, list[str]]


def _product(name: str, entry: dict[str, Any]) -> Product:
    mig = entry.get("mig") or {}
    return Product(
        name=name,
        memory_mib=int(entry["memory_mib"]),
        mig={str(k): int(v) for k, v in (mig.get("profiles") or {}).items()},
        compute_slices=int(entry.get("compute_slices", 7)),
        memory_slices=int(entry.get("memory_slices", 8)),
        mig_memory_gib={int(k): float(v) for k, v in (mig.get("memory_gib") or {}).items()},
        source=str(entry.get("source", "")),
        mig_memory_source=str(mig.get("memory_source", "")),
    )


def _read_catalog() -> Any:
    """The catalog file's data, read with PyYAML's C loader where it is built (the pure-Python
    one took a tenth of a one-file lint's start to exit); the same safe loader either way."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(CATALOG_FILE.read_text(encoding="utf-8"), Loader=loader)


@functools.lru_cache(maxsize=1)
def _catalog() -> _Catalog:
    raw = _read_catalog()
    by_key: dict[str, Product] = {}
    spellings: dict[str, list[str]] = {}
    for name, entry in raw["products"].items():
        product = _product(name, entry)
        for alias in [name, *entry.get("aliases", [])]:
            previous = by_key.get(_key(alias))
            if previous is not None and previous.name != name:  # a data error: a name would mean two products
                raise ValueError(f"{CATALOG_FILE}: {alias!r} of {name} is already a name of {previous.name}")
            by_key[_key(alias)] = product
            spellings.setdefault(_key(alias), []).append(alias)
    ambiguous: dict[str, tuple[Product, ...]] = {}
    for name, members in (raw.get("ambiguous") or {}).items():
        if _key(name) in by_key:
            raise ValueError(f"{CATALOG_FILE}: ambiguous name {name!r} is also a name of {by_key[_key(name)].name}")
        ambiguous[_key(name)] = tuple(by_key[_key(m)] for m in members)
    return _Catalog(by_key, ambiguous, spellings)


def _index() -> dict[str, Product]:
    return _catalog().by_key


@functools.lru_cache(maxsize=1024)
def resolve(name: str | None) -> Resolution:
    """What a product name as a user, NVML or GFD spells it names in the catalog."""
    if not name or not name.strip():
        return Resolution("absent")
    cat = _catalog()
    key = _key(name)
    if key in cat.ambiguous:
        return Resolution("ambiguous", candidates=cat.ambiguous[key])
    product = cat.by_key.get(key)
    if product is not None:
        return Resolution("known", product)
    return Resolution("unknown", suggestion=_closest(name, key, cat))


def _closest(name: str, key: str, cat: _Catalog) -> str:
    """The catalog spelling nearest to `name`, written the way `name` is (a GFD label gets a GFD label)."""
    match = closest(key, cat.spellings)
    if match is None:
        return ""
    return max(cat.spellings[match], key=lambda s: difflib.SequenceMatcher(None, name, s).ratio())


def lookup(name: str | None) -> Product | None:
    """The one catalog product a name fits, or None (unknown, ambiguous or no name)."""
    return resolve(name).product


def products() -> list[Product]:
    return sorted({p.name: p for p in _index().values()}.values(), key=lambda p: (p.memory_mib, p.name))


def ambiguous_names() -> dict[str, tuple[Product, ...]]:
    """Names that fit several products, as the catalog spells them, with those products."""
    raw = _read_catalog()
    cat = _catalog()
    return {name: cat.ambiguous[_key(name)] for name in raw.get("ambiguous") or {}}


#: GPU Feature Discovery's label: the NVML name, spaces as dashes (`-SHARED` under time-slicing).
PRODUCT_LABEL = "nvidia.com/gpu.product"


@functools.lru_cache(maxsize=1)
def _node_label_tables() -> dict[str, dict[str, str]]:
    raw = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    tables = raw.get("node_labels") or {}
    return {str(key): {str(v).lower(): str(p) for v, p in (values or {}).items()} for key, values in tables.items()}


def product_label_keys() -> tuple[str, ...]:
    """The node labels that name a GPU product, GPU Feature Discovery's first."""
    return (PRODUCT_LABEL, *_node_label_tables())


def product_from_labels(labels: Mapping[str, Any]) -> tuple[str, str] | None:
    """(the label, the product it names) from node labels or a node selector.

    GPU Feature Discovery's `nvidia.com/gpu.product` wins; else a cloud's label
    (`cloud.google.com/gke-accelerator: nvidia-l4`) gives its catalog product, or its value
    as written when the catalog does not list it (reported as an unknown product).
    """
    for key in product_label_keys():
        value = labels.get(key)
        if isinstance(value, str) and value:
            if key == PRODUCT_LABEL:
                return key, value
            return key, _node_label_tables()[key].get(value.lower(), value)
    return None


@functools.lru_cache(maxsize=1)
def largest_memory_gb() -> float:
    """The most memory any GPU in the catalog has: no single GPU holds more."""
    return max(p.memory_gb for p in _index().values())


def mig_slice_gb(profile: str, product: Product | None = None) -> float:
    """A MIG slice's real memory: its product's figure, or, with the product unknown, the
    smallest figure of any catalog product that offers the profile (a `1g.10gb` holds 9.5
    GiB on an A100 80GB, 9.75 on an H100: 9.5), or the name's number for a profile no
    catalog product has."""
    if product is not None:
        return product.mig_slice_gb(profile)
    return _least_slice_gb(profile)


@functools.lru_cache(maxsize=256)
def _least_slice_gb(profile: str) -> float:
    offering = [p.mig_slice_gb(profile) for p in products() if profile in p.mig]
    return min(offering) if offering else mig_profile_memory_gb(profile)


@functools.lru_cache(maxsize=256)
def offered_mig_profile(profile: str) -> bool:
    """Some catalog product offers this MIG profile (what a slice of an unknown product is checked against)."""
    return any(profile in p.mig for p in products())


def mig_profile_memory_gb(profile: str) -> float:
    """The memory in a MIG profile's name: `3g.40gb` -> 40.0 (`+me` and other suffixes ignored)."""
    memory = profile.partition(".")[2]
    digits = re.match(r"\d+", memory)
    return float(digits.group()) if digits else 0.0


def mig_profile_compute_slices(profile: str) -> int:
    return int(profile.partition("g")[0])

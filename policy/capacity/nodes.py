"""The `nodes` provider: GPUs as Kubernetes Node objects' GPU Feature Discovery labels say.

GFD labels a node, not each GPU: `nvidia.com/gpu.product`, `nvidia.com/gpu.memory`
(MiB per GPU), `nvidia.com/gpu.count`, and with MIG `nvidia.com/mig.strategy`:

- `single`: every GPU is cut into identical MIG devices; `gpu.product` gains a
  `-MIG-<profile>` suffix and `gpu.count`/`gpu.memory` describe the MIG devices;
- `mixed`: `nvidia.com/mig-<profile>.count` and `.memory` per profile, node-wide.

So MIG devices are known per node, not per GPU: they go to the host's `mig_pool`.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable

from .. import catalog
from .inventory import Device, Host, Inventory, MigPoolEntry, failed

LABEL = "nvidia.com/"
_MIXED = re.compile(r"^nvidia\.com/mig-(\d+g\.\d+gb(?:\+me)?)\.(count|memory)$")


def is_node(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("kind") == "Node"


def node_objects(data: Any) -> list[dict[str, Any]] | None:
    """The Node objects in a `kubectl get nodes -o json|yaml` document, or None if it holds none."""
    if is_node(data):
        return [data]
    if isinstance(data, dict) and data.get("kind") in {"List", "NodeList"} and isinstance(data.get("items"), list):
        items = data["items"]
        if items and all(is_node(i) for i in items):
            return list(items)
        if not items and data.get("kind") == "NodeList":
            return []
    return None


def inventory_from_nodes(nodes: Iterable[dict[str, Any]], origin: str) -> Inventory:
    """One host per node that carries GFD labels; nodes without them are not GPU nodes."""
    hosts: list[Host] = []
    problems: list[str] = []
    for node in nodes:
        metadata = node.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        name = str(metadata.get("name") or "node")
        raw_labels = metadata.get("labels")
        labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, dict) else {}
        if f"{LABEL}gpu.product" not in labels:
            continue
        try:
            hosts.append(host_from_labels(name, labels))
        except ValueError as exc:
            problems.append(f"node {name}: {exc}")
    if problems and not hosts:
        return failed("nodes", origin, problems[0])
    if not hosts:
        return failed("nodes", origin, f"no node in {origin} carries GPU Feature Discovery labels (nvidia.com/gpu.product)")
    return Inventory(source="nodes", origin=origin, hosts=hosts)


def host_from_labels(name: str, labels: dict[str, str]) -> Host:
    """A node's GPUs from its labels. Raises ValueError naming a malformed label."""
    product = labels[f"{LABEL}gpu.product"]
    strategy = labels.get(f"{LABEL}mig.strategy", "none")
    count = _int(labels, "gpu.count", default=1, upper=MAX_LABEL_COUNT)
    memory_mib = _int(labels, "gpu.memory", default=None)
    if strategy == "single" and "-MIG-" in product:
        return _single(name, labels, product, count, memory_mib)
    pool: dict[str, MigPoolEntry] = {}
    for key in labels:
        found = _MIXED.match(key)
        if found and found.group(2) == "count":
            profile = found.group(1)
            mig_memory = _int(labels, f"mig-{profile}.memory", default=None)
            pool[profile] = MigPoolEntry(
                count=_int(labels, f"mig-{profile}.count", default=0, upper=MAX_LABEL_COUNT),
                memory_gb=_gib(mig_memory) if mig_memory is not None else None,
            )
    devices = [
        Device(
            id=f"gpu{i}",
            index=i,
            product=product,
            memory_gb=_gib(memory_mib) if memory_mib is not None else _catalog_gb(product),
        )
        for i in range(count)
    ]
    mixed = strategy == "mixed" or bool(pool)
    return Host(name=name, devices=devices, mig_pool={p: e for p, e in pool.items() if e.count} if mixed else None)


def _single(name: str, labels: dict[str, str], product: str, count: int, memory_mib: int | None) -> Host:
    """Single strategy: `count` identical MIG devices; how many GPUs hold them is estimated.

    Each GPU holds as many of the profile as fit (the catalog's limit, or compute
    slices / the profile's slices), the way the MIG manager carves a `all-<profile>`
    layout.
    """
    base, _, profile = product.partition("-MIG-")
    entry = catalog.lookup(base)
    slices = _int(labels, "gpu.slices.gi", default=None) or int(profile.partition("g")[0] or 1)
    per_gpu = (entry.compute_slices if entry else 7) // max(slices, 1)
    if entry and profile in entry.mig:
        per_gpu = min(per_gpu, entry.mig[profile])
    gpus = max(1, math.ceil(count / max(per_gpu, 1)))
    devices = [
        Device(id=f"gpu{i}", index=i, product=base, memory_gb=entry.memory_gb if entry else None, mig_mode=True)
        for i in range(gpus)
    ]
    pool = {profile: MigPoolEntry(count=count, memory_gb=_gib(memory_mib) if memory_mib is not None else None)}
    return Host(name=name, devices=devices, mig_pool=pool)


#: Bounds on the numbers node labels carry, so a made-up label cannot make gpuadmit build
#: billions of devices or carry a number past int64: devices (or MIG devices) on one
#: node, and any other number (MiB of the largest GPU, with room).
MAX_LABEL_COUNT = 1024
MAX_LABEL_NUMBER = 4096 * 1024


def _int(labels: dict[str, str], key: str, default: int | None, upper: int = MAX_LABEL_NUMBER) -> Any:
    value = labels.get(f"{LABEL}{key}")
    if value is None or value == "":
        return default
    text = str(value).strip()
    if len(text) > 12 or not text.isascii():
        raise ValueError(f"label {LABEL}{key}={text[:20]!r} is not a whole number from 0 to {upper}")
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"label {LABEL}{key}={value!r} is not a whole number") from None
    if number < 0:
        raise ValueError(f"label {LABEL}{key}={value!r} is negative")
    if number > upper:
        raise ValueError(f"label {LABEL}{key}={value!r} is larger than {upper}")
    return number


def _gib(mib: int) -> float:
    return round(mib / catalog.MIB_PER_GIB, 2)


def _catalog_gb(product: str) -> float | None:
    entry = catalog.lookup(product)
    return entry.memory_gb if entry else None

"""Choosing a capacity provider from `--capacity declared|nvml|nodes|FILE`.

`declared` is the plan itself; `nvml` this machine's GPUs; `nodes` the Kubernetes
API's Node labels (in a pod, for the webhook); anything else is a capacity file, an
inventory or a Node list. NVML and files are read once; the cluster is re-read after
`CLUSTER_TTL_S` so a long-running webhook sees nodes come and go.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from ..errors import InputError
from .inventory import Inventory

KEYWORDS = ("declared", "nvml", "nodes")
CLUSTER_TTL_S = 60.0


class CapacityProvider:
    """Hands out an inventory; re-reads it when it is older than `ttl_s` (None: never)."""

    def __init__(self, read: Callable[[], Inventory], ttl_s: float | None = None) -> None:
        self._read = read
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._inventory: Inventory | None = None
        self._read_at = 0.0

    def inventory(self) -> Inventory:
        with self._lock:
            stale = self._ttl_s is not None and time.monotonic() - self._read_at > self._ttl_s
            if self._inventory is None or stale:
                self._inventory = self._read()
                self._read_at = time.monotonic()
            return self._inventory


def open_provider(capacity: str) -> CapacityProvider:
    """The provider for a `--capacity` value. A missing or unusable file raises InputError (exit 2)."""
    if capacity == "declared":
        from .declared import read_inventory as read_declared

        return CapacityProvider(read_declared)
    if capacity == "nvml":
        from .nvml import read_inventory as read_nvml

        return _eager(read_nvml)
    if capacity == "nodes":
        from .cluster import read_inventory as read_cluster

        return CapacityProvider(read_cluster, ttl_s=CLUSTER_TTL_S)
    path = Path(capacity)
    if not path.is_file():
        raise InputError(
            f"--capacity {capacity!r}: no such file; give declared, nvml, nodes (in a pod) or an inventory/Node file"
        )
    from .file import load_capacity_file

    return _eager(lambda: load_capacity_file(path))


def _eager(read: Callable[[], Inventory]) -> CapacityProvider:
    provider = CapacityProvider(read)
    provider.inventory()
    return provider

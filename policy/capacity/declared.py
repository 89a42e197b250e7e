"""The `declared` provider: the plan's own figures, nothing to verify them against.

The default, so that linting needs no GPU; `capacity-match` stays silent under it.
"""

from __future__ import annotations

from .inventory import Inventory


def read_inventory() -> Inventory:
    return Inventory(source="declared", origin="the plan")

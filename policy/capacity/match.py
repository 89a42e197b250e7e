"""Matching a plan's GPUs (and MIG slices) to the real devices of an inventory.

A plan GPU is matched by `uuid` when it gives one, else by `index`, else by `id`
(`gpu0` is device index 0; an inventory file may use its own ids), else by its
position in the plan's `gpus:` list among the devices not yet matched. A GPU that
gives a `uuid` or `index` the inventory lacks is not found: there is no fallback.
The result is plain data for the facts builder; no rule logic lives here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import catalog
from ..plan import Gpu, ServingPlan
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: `lint` with declared capacity never loads the inventory model
    from .inventory import Device, Host, Inventory, MigDevice

_GPU_N = re.compile(r"^gpu(\d+)$")


@dataclass
class RealUnit:
    """What is really there for one plan GPU or MIG slice."""

    verified: bool = False
    found: bool = False
    memory_gb: float | None = None
    product: str = ""
    product_matches: bool = True
    mig_mode: bool = False
    mig: list[str] = field(default_factory=list)
    mig_matches: bool = True
    mig_text: str = ""
    processes: list[str] = field(default_factory=list)
    processes_gb: float = 0.0
    note: str = ""
    device: str = ""


@dataclass
class PlanCapacity:
    """Where capacity came from for one plan, and whether it could be read at all."""

    source: str = "declared"
    origin: str = "the plan"
    host: str = ""
    n_devices: int = 0
    error: str = ""
    units: dict[str, RealUnit] = field(default_factory=dict)

    @property
    def checked(self) -> bool:
        return self.source != "declared"


def match_plan(plan: ServingPlan, inventory: Inventory) -> PlanCapacity:
    """Per plan GPU id (and slice id `gpu0:1`): the real device's figures, or why there are none."""
    result = PlanCapacity(source=inventory.source, origin=inventory.origin)
    if inventory.declared:
        return result
    host, why = inventory.host_for(plan.metadata.name)
    if host is None:
        result.error = why
        for gpu in plan.gpus:
            result.units[gpu.id] = RealUnit(note=why)
        return result
    result.host = host.name
    result.n_devices = len(host.devices)
    matched = _match_devices(plan.gpus, host.devices)
    for gpu in plan.gpus:
        device = matched.get(gpu.id)
        if device is None:
            result.units[gpu.id] = RealUnit()
            continue
        if device.error:
            result.units[gpu.id] = RealUnit(found=True, device=device.describe(), note=f"{device.describe()}: {device.error}")
            continue
        result.units[gpu.id] = _whole(gpu, device)
        if gpu.sharing == "mig" and host.mig_pool is None:
            result.units.update(_slices(gpu, device))
    if host.mig_pool is not None:
        _judge_pool(plan.gpus, matched, host, result)
    return result


def _match_devices(gpus: list[Gpu], devices: list[Device]) -> dict[str, Device]:
    by_uuid = {d.uuid.lower(): d for d in devices if d.uuid}
    by_index = {d.index: d for d in devices}
    by_id = {d.id: d for d in devices}
    matched: dict[str, Device] = {}
    unsettled: list[Gpu] = []
    for gpu in gpus:
        if gpu.uuid:
            device = by_uuid.get(gpu.uuid.lower())
        elif gpu.index is not None:
            device = by_index.get(gpu.index)
        elif gpu.id in by_id:
            device = by_id[gpu.id]
        elif _GPU_N.match(gpu.id):
            device = by_index.get(int(_GPU_N.match(gpu.id).group(1)))  # type: ignore[union-attr]
        else:
            unsettled.append(gpu)
            continue
        if device is not None:
            matched[gpu.id] = device
    taken = {id(d) for d in matched.values()}
    free = [d for d in sorted(devices, key=lambda d: d.index) if id(d) not in taken]
    for gpu, device in zip(unsettled, free):
        matched[gpu.id] = device
    return matched


def _whole(gpu: Gpu, device: Device) -> RealUnit:
    processes = [p.describe() for p in device.processes]
    held = sum((p.memory_gb or 0.0 for p in device.processes), 0.0)
    if device.unattributed_gb:
        processes.append(f"{device.unattributed_gb:.1f} GiB held by processes not visible here")
        held += device.unattributed_gb
    declared_mig = list(gpu.mig or []) if gpu.sharing == "mig" else []
    real_mig = [m.profile for m in device.mig]
    if (gpu.sharing == "mig") != device.mig_mode:
        mig_matches = False
    else:
        mig_matches = sorted(declared_mig) == sorted(real_mig)
    return RealUnit(
        verified=True,
        found=True,
        memory_gb=device.memory_gb,
        product=device.product,
        product_matches=not gpu.product or not device.product or same_product(gpu.product, device.product),
        mig_mode=device.mig_mode,
        mig=real_mig,
        mig_matches=mig_matches,
        mig_text=_mig_text(device.mig_mode, real_mig),
        processes=processes,
        processes_gb=held,
        device=device.describe(),
    )


def _slices(gpu: Gpu, device: Device) -> dict[str, RealUnit]:
    """Each declared slice gets the first unused real MIG device of its profile."""
    units: dict[str, RealUnit] = {}
    unused: list[MigDevice] = list(device.mig)
    for n, profile in enumerate(gpu.mig or []):
        mig = next((m for m in unused if m.profile == profile), None)
        if mig is None:
            units[f"{gpu.id}:{n}"] = RealUnit(found=True, device=device.describe())
            continue
        unused.remove(mig)
        units[f"{gpu.id}:{n}"] = RealUnit(
            verified=True,
            found=True,
            memory_gb=mig.memory_gb,
            product=device.product,
            mig=[mig.profile],
            mig_mode=True,
            processes=[p.describe() for p in mig.processes],
            processes_gb=sum((p.memory_gb or 0.0 for p in mig.processes), 0.0),
            device=f"{device.describe()} MIG device {mig.index}" + (f" ({mig.uuid})" if mig.uuid else ""),
        )
    return units


def _judge_pool(gpus: list[Gpu], matched: dict[str, Device], host: Host, result: PlanCapacity) -> None:
    """Node labels count MIG devices per node: compare the plan's slices on that node as a whole."""
    on_host = [g for g in gpus if g.id in matched and result.units[g.id].verified]
    declared = sorted(p for g in on_host if g.sharing == "mig" for p in (g.mig or []))
    real = host.pool_profiles()
    pool = host.mig_pool or {}
    text = (_counts(real) if real else "no MIG devices") + f" on node {host.name} (labels do not say which GPU holds which)"
    for gpu in on_host:
        result.units[gpu.id].mig_matches = True  # per GPU unknown; judged for the node below
    if declared == real:
        for gpu in on_host:
            unit = result.units[gpu.id]
            unit.mig = list(gpu.mig or []) if gpu.sharing == "mig" else []
            unit.mig_mode = gpu.sharing == "mig"
            unit.mig_text = _mig_text(unit.mig_mode, unit.mig)
            for n, profile in enumerate(unit.mig):
                result.units[f"{gpu.id}:{n}"] = RealUnit(
                    verified=True,
                    found=True,
                    memory_gb=pool[profile].memory_gb if profile in pool else None,
                    product=unit.product,
                    mig=[profile],
                    mig_mode=True,
                    device=f"a {profile} MIG device on {host.name}",
                )
        return
    flagged = [g for g in on_host if g.sharing == "mig"] or on_host[:1]
    for gpu in flagged:
        unit = result.units[gpu.id]
        unit.mig_matches = False
        unit.mig = real
        unit.mig_text = text


def _mig_text(mode: bool, profiles: list[str]) -> str:
    if not mode:
        return "MIG disabled"
    return _counts(profiles) if profiles else "MIG enabled but no MIG devices"


def _counts(profiles: list[str]) -> str:
    counts: dict[str, int] = {}
    for profile in profiles:
        counts[profile] = counts.get(profile, 0) + 1
    return ", ".join(f"{p} ×{n}" if n > 1 else p for p, n in counts.items())


def same_product(declared: str, real: str) -> bool:
    """True when both names are the same product (catalog spellings, GFD's dashes and -SHARED)."""
    a, b = catalog.resolve(declared), catalog.resolve(real)
    if a.product is not None and b.product is not None:
        return a.product.name == b.product.name
    if a.status == "ambiguous" and b.product is not None:  # `A100` on an A100-SXM4-80GB: the family matches
        return b.product in a.candidates
    return _plain(declared) == _plain(real)


def _plain(name: str) -> str:
    key = re.sub(r"[^a-z0-9.]+", "", name.lower())
    return key.removeprefix("nvidia").removeprefix("tesla").removesuffix("shared")

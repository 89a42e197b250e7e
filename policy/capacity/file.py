"""Capacity files: an inventory printed by `gpuadmit inspect`, or Kubernetes Node objects.

`--capacity FILE` takes either; the content decides which. The inventory file's
`gpus:` list is a plan fragment (validated with the plan's own GPU model, so it can be
pasted into a plan as is); what is in use on each GPU sits apart under `usage:`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import pydantic_input_error
from ..errors import InputError
from ..plan import API_VERSION, Gpu
from ..yamlio import load_documents, read_text
from .inventory import Device, Host, Inventory, MigDevice, ProcessUsage
from .nodes import inventory_from_nodes, node_objects

KIND = "GpuInventory"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceUsage(_Strict):
    """What is in use on one GPU, apart from the plan fragment."""

    gpu: str = Field(description="The `id` of a GPU under `gpus:`.")
    free_gb: float | None = Field(None, ge=0)
    unattributed_gb: float = Field(0.0, ge=0, description="Used by processes not visible where it was read.")
    processes: list[ProcessUsage] = Field(default_factory=list)
    mig_devices: list[MigDevice] = Field(default_factory=list)
    error: str = ""


class InventoryMetadata(_Strict):
    name: str = Field("localhost", description="The host the GPUs are on.")
    source: str = Field("nvml", description="Where the inventory was read (nvml).")


class InventoryFile(_Strict):
    """The document `gpuadmit inspect` prints."""

    apiVersion: Literal["gpuadmit.dev/v1alpha1"] = API_VERSION
    kind: Literal["GpuInventory"] = "GpuInventory"
    metadata: InventoryMetadata = Field(default_factory=InventoryMetadata)
    gpus: list[Gpu] = Field(default_factory=list)
    usage: list[DeviceUsage] = Field(default_factory=list)


def load_capacity_file(path: Path) -> Inventory:
    """An inventory file or a Node list. Unusable files raise InputError (exit 2)."""
    file = str(path)
    docs = [d.data for d in load_documents(read_text(path, what="capacity"), file) if d.data is not None]
    nodes: list[dict[str, Any]] = []
    for data in docs:
        found = node_objects(data)
        if found is None:
            break
        nodes.extend(found)
    else:
        if docs:
            return inventory_from_nodes(nodes, file)
    if (
        len(docs) == 1
        and isinstance(docs[0], dict)
        and (docs[0].get("kind") == KIND or ("gpus" in docs[0] and "kind" not in docs[0]))
    ):
        return parse_inventory_document(docs[0], file)
    raise InputError(
        "not a capacity file: expected a GpuInventory (as `gpuadmit inspect` prints) "
        "or Kubernetes Nodes (`kubectl get nodes -o json`)",
        file=file,
    )


def parse_inventory_document(data: dict[str, Any], file: str) -> Inventory:
    try:
        document = InventoryFile.model_validate(data)
    except ValidationError as exc:
        raise pydantic_input_error(exc, data, file, InventoryFile) from None
    usage = {u.gpu: u for u in document.usage}
    known = {g.id for g in document.gpus}
    for entry in document.usage:
        if entry.gpu not in known:
            raise InputError(f"usage names GPU {entry.gpu!r}, which is not under gpus:", file=file, field="usage")
    devices: list[Device] = []
    for position, gpu in enumerate(document.gpus):
        used = usage.get(gpu.id) or DeviceUsage(gpu=gpu.id)
        mig_devices = used.mig_devices or [MigDevice(index=n, profile=profile) for n, profile in enumerate(gpu.mig or [])]
        devices.append(
            Device(
                id=gpu.id,
                index=gpu.index if gpu.index is not None else position,
                uuid=gpu.uuid or "",
                product=gpu.product or "",
                memory_gb=gpu.memory_gb,
                free_gb=used.free_gb,
                unattributed_gb=used.unattributed_gb,
                mig_mode=gpu.sharing == "mig",
                mig=mig_devices if gpu.sharing == "mig" else [],
                processes=used.processes,
                error=used.error,
            )
        )
    host = Host(name=document.metadata.name, devices=devices)
    return Inventory(source="file", origin=file, hosts=[host])


def inventory_document(inventory: Inventory) -> dict[str, Any]:
    """The inventory as the file `gpuadmit inspect` prints: a `gpus:` plan fragment plus `usage:`."""
    host = inventory.hosts[0] if inventory.hosts else Host(name="localhost")
    gpus: list[dict[str, Any]] = []
    usage: list[dict[str, Any]] = []
    for device in host.devices:
        gpu: dict[str, Any] = {"id": device.id, "index": device.index}
        if device.uuid:
            gpu["uuid"] = device.uuid
        if device.product:
            gpu["product"] = device.product
        if device.memory_gb is not None:
            gpu["memory_gb"] = device.memory_gb
        if device.mig_mode:
            gpu["sharing"] = "mig"
            gpu["mig"] = [m.profile for m in device.mig]
        gpus.append(gpu)
        entry = DeviceUsage(
            gpu=device.id,
            free_gb=device.free_gb,
            unattributed_gb=device.unattributed_gb,
            processes=device.processes,
            mig_devices=device.mig,
            error=device.error,
        )
        usage.append(entry.model_dump(exclude_defaults=True) | {"gpu": device.id})
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": host.name, "source": inventory.source},
        "gpus": gpus,
        "usage": usage,
    }

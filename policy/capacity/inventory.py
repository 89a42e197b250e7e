"""The inventory: real GPUs as every capacity provider reports them.

NVML, Kubernetes node labels and inventory files all end here, so the facts builder
compares a plan with one shape whatever the source. Memory is GiB (2**30 bytes).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Source = Literal["declared", "nvml", "nodes", "file"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProcessUsage(_Model):
    """A process that already holds memory on a GPU or MIG device."""

    pid: int = Field(ge=0)
    memory_gb: float | None = Field(None, ge=0, description="None when the driver does not report it.")

    def describe(self) -> str:
        if self.memory_gb is None:
            return f"pid {self.pid} holds an unreported amount"
        return f"pid {self.pid} holds {self.memory_gb:.1f} GiB"


class MigDevice(_Model):
    """One MIG device (GPU instance) carved on a GPU."""

    index: int = Field(ge=0)
    profile: str
    uuid: str = ""
    memory_gb: float | None = Field(None, ge=0)
    free_gb: float | None = Field(None, ge=0)
    processes: list[ProcessUsage] = Field(default_factory=list)


class Device(_Model):
    """One physical GPU."""

    id: str
    index: int = Field(ge=0)
    uuid: str = ""
    product: str = ""
    memory_gb: float | None = Field(None, ge=0, description="Total memory; None when the source does not say.")
    free_gb: float | None = Field(None, ge=0)
    unattributed_gb: float = Field(
        0.0, ge=0, description="Memory in use by processes this machine cannot name (other containers)."
    )
    mig_mode: bool = False
    mig: list[MigDevice] = Field(default_factory=list)
    processes: list[ProcessUsage] = Field(default_factory=list)
    error: str = Field("", description="Why this device could not be read (e.g. the GPU is lost); empty when read.")

    def describe(self) -> str:
        uuid = f", {self.uuid}" if self.uuid else ""
        product = f" {self.product}" if self.product else ""
        return f"index {self.index}{product}{uuid}"


class MigPoolEntry(_Model):
    """MIG devices of one profile on a node, when the source does not say which GPU holds them."""

    count: int = Field(ge=0)
    memory_gb: float | None = Field(None, ge=0)


class Host(_Model):
    """A machine (or Kubernetes node) and its GPUs."""

    name: str
    devices: list[Device] = Field(default_factory=list)
    mig_pool: dict[str, MigPoolEntry] | None = Field(
        None, description="Node labels give MIG counts per profile, not per GPU; None when placement is known."
    )

    def pool_profiles(self) -> list[str]:
        return sorted(p for p, entry in (self.mig_pool or {}).items() for _ in range(entry.count))


class Inventory(_Model):
    """What a capacity provider found, or why it found nothing (`error`)."""

    source: Source
    origin: str = Field("", description="Where it was read: a file, this machine, the cluster.")
    hosts: list[Host] = Field(default_factory=list)
    error: str = Field("", description="Why capacity could not be read at all; empty when it was.")

    @property
    def declared(self) -> bool:
        return self.source == "declared"

    def host_for(self, plan_name: str) -> tuple[Host | None, str]:
        """The host a plan is checked against, or None and the reason.

        A host named like the plan wins; a single host is used as is; several hosts
        with identical GPUs (a uniform pool) are represented by the first one.
        """
        if self.error:
            return None, self.error
        hosts = [h for h in self.hosts if h.devices]
        if not hosts:
            return None, f"{self.origin or self.source} reports no GPUs"
        for host in hosts:
            if host.name == plan_name:
                return host, ""
        if len(hosts) == 1:
            return hosts[0], ""
        shapes = {_shape(h) for h in hosts}
        if len(shapes) == 1:
            return hosts[0], ""
        return None, (
            f"{len(hosts)} GPU nodes with different GPUs in {self.origin or self.source} and none is named "
            f"{plan_name!r}; name the plan (metadata.name) after its node"
        )


def _shape(host: Host) -> tuple[object, ...]:
    devices = tuple((d.product, d.memory_gb, tuple(m.profile for m in d.mig)) for d in host.devices)
    pool = tuple(sorted((host.mig_pool or {}).items(), key=lambda kv: kv[0]))
    return devices, tuple((p, e.count) for p, e in pool)


def failed(source: Source, origin: str, reason: str) -> Inventory:
    return Inventory(source=source, origin=origin, error=reason)

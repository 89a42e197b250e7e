"""The `nvml` provider: this machine's GPUs through NVML (`pynvml` from nvidia-ml-py).

NVML can fail in many ways (no library, driver not loaded, no permission, a GPU that
fell off the bus) and a driver call can hang. Every call therefore runs on a daemon
worker thread and is awaited with a timeout, and every failure becomes the
inventory's `error` (or a device's), which the `capacity-match` rule reports. Nothing
here raises to the caller.
"""

from __future__ import annotations

import queue
import re
import socket
import threading
import time
from types import ModuleType
from typing import Any, Callable

from .inventory import Device, Host, Inventory, MigDevice, ProcessUsage, failed

GIB = 1024**3
MIB_PER_GIB = 1024
#: Longest one NVML call may take before the provider gives up on the driver.
CALL_TIMEOUT_S = 5.0
#: Longest the whole inventory may take.
TOTAL_TIMEOUT_S = 20.0
#: Used memory beyond what named processes hold, below which it is driver noise.
UNATTRIBUTED_MIN_GB = 0.5

_MIG_PROFILE = re.compile(r"(\d+g\.\d+gb(?:\+me)?)")

#: NVML error classes a user can act on, in words.
_REASONS = {
    "NVMLError_LibraryNotFound": "the NVML library (libnvidia-ml.so.1) is not installed: no NVIDIA driver on this machine",
    "NVMLError_DriverNotLoaded": "the NVIDIA driver is not loaded",
    "NVMLError_NoPermission": "no permission to query the GPU through NVML",
    "NVMLError_GpuIsLost": "the GPU is lost (it fell off the bus or needs a reset)",
    "NVMLError_Timeout": "NVML timed out",
    "NVMLError_LibRmVersionMismatch": "the NVML library and the kernel driver versions differ",
    "NVMLError_Uninitialized": "NVML is not initialised",
    "NVMLError_ResetRequired": "the GPU needs a reset",
    "NVMLError_Unknown": "NVML reported an unknown error",
}


class NvmlFault(Exception):
    """One NVML failure, already in words."""


class _Worker:
    """A daemon thread that runs NVML calls one at a time; callers wait with a deadline.

    A daemon thread, not an executor: a call stuck in the driver must not keep the
    process from exiting.
    """

    def __init__(self, deadline: float, call_timeout_s: float) -> None:
        self._call_timeout_s = call_timeout_s
        self._calls: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], queue.Queue[tuple[bool, Any]]]] = (
            queue.Queue()
        )
        self._deadline = deadline
        self.hung = False
        threading.Thread(target=self._loop, name="gpuadmit-nvml", daemon=True).start()

    def _loop(self) -> None:
        while True:
            fn, args, kwargs, answer = self._calls.get()
            try:
                answer.put((True, fn(*args, **kwargs)))
            except BaseException as exc:  # handed back to the caller, who turns it into words
                answer.put((False, exc))

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.hung:
            raise NvmlFault("an earlier NVML call did not return")
        answer: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)
        self._calls.put((fn, args, kwargs, answer))
        wait = max(0.0, min(self._call_timeout_s, self._deadline - time.monotonic()))
        try:
            ok, value = answer.get(timeout=wait)
        except queue.Empty:
            self.hung = True
            raise NvmlFault(f"{getattr(fn, '__name__', 'an NVML call')} did not return within {wait:g} s") from None
        if not ok:
            raise value
        return value


def read_inventory(
    call_timeout_s: float | None = None, total_timeout_s: float | None = None, host: str | None = None
) -> Inventory:
    """This machine's GPUs, or an inventory whose `error` says why they could not be read."""
    origin = "NVML on this machine"
    try:
        import pynvml
    except ImportError:
        return failed("nvml", origin, "the pynvml module (nvidia-ml-py) is not installed")
    total = total_timeout_s if total_timeout_s is not None else TOTAL_TIMEOUT_S
    worker = _Worker(time.monotonic() + total, call_timeout_s if call_timeout_s is not None else CALL_TIMEOUT_S)
    return _read(pynvml, worker, origin, host or socket.gethostname())


def _read(nvml: ModuleType, worker: _Worker, origin: str, host: str) -> Inventory:
    try:
        worker.call(nvml.nvmlInit)
    except Exception as exc:
        return failed("nvml", origin, reason(nvml, exc))
    try:
        count = int(worker.call(nvml.nvmlDeviceGetCount))
        devices = [_device(nvml, worker, index) for index in range(count)]
    except Exception as exc:
        return failed("nvml", origin, reason(nvml, exc))
    finally:
        if not worker.hung:
            try:
                worker.call(nvml.nvmlShutdown)
            except Exception:  # shutting down is best effort; the inventory is already read
                pass
    if worker.hung:
        return failed("nvml", origin, "an NVML call did not return in time")
    return Inventory(source="nvml", origin=origin, hosts=[Host(name=host, devices=devices)])


def _device(nvml: ModuleType, worker: _Worker, index: int) -> Device:
    """One GPU; a failure on it is recorded on the device so the others still count."""
    try:
        handle = worker.call(nvml.nvmlDeviceGetHandleByIndex, index)
        name = _text(worker.call(nvml.nvmlDeviceGetName, handle))
        uuid = _text(worker.call(nvml.nvmlDeviceGetUUID, handle))
        total, free, used = _memory(nvml, worker, handle)
        mig_mode = _mig_enabled(nvml, worker, handle)
        mig = _mig_devices(nvml, worker, handle) if mig_mode else []
        processes = [] if mig_mode else _processes(nvml, worker, handle)
    except NvmlFault:
        raise
    except Exception as exc:
        return Device(id=f"gpu{index}", index=index, error=reason(nvml, exc))
    held = sum(p.memory_gb or 0.0 for p in processes) + sum(p.memory_gb or 0.0 for m in mig for p in m.processes)
    unattributed = max(0.0, used - held) if used is not None else 0.0
    return Device(
        id=f"gpu{index}",
        index=index,
        uuid=uuid,
        product=name,
        memory_gb=_gib(total),
        free_gb=_gib(free),
        unattributed_gb=_round(unattributed) if unattributed >= UNATTRIBUTED_MIN_GB else 0.0,
        mig_mode=mig_mode,
        mig=mig,
        processes=processes,
    )


def _memory(nvml: ModuleType, worker: _Worker, handle: Any) -> tuple[int, int, float | None]:
    """(total bytes, free bytes, GiB used by processes) — v2 where the binding and driver have it.

    v2 separates memory the driver reserves from memory processes use; v1 counts the
    reserve as used, so `used` is only trusted from v2.
    """
    version = getattr(nvml, "nvmlMemory_v2", None)
    if version is not None:
        try:
            info = worker.call(nvml.nvmlDeviceGetMemoryInfo, handle, version=version)
            return int(info.total), int(info.free), int(info.used) / GIB
        except NvmlFault:
            raise
        except nvml.NVMLError as exc:
            if not _named(exc, "NVMLError_FunctionNotFound", "NVMLError_NotSupported", "NVMLError_ArgumentVersionMismatch"):
                raise
    info = worker.call(nvml.nvmlDeviceGetMemoryInfo, handle)
    return int(info.total), int(info.free), None


def _mig_enabled(nvml: ModuleType, worker: _Worker, handle: Any) -> bool:
    try:
        current, _pending = worker.call(nvml.nvmlDeviceGetMigMode, handle)
    except NvmlFault:
        raise
    except nvml.NVMLError as exc:
        if _named(exc, "NVMLError_NotSupported", "NVMLError_FunctionNotFound"):
            return False
        raise
    return bool(current == getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1))


def _mig_devices(nvml: ModuleType, worker: _Worker, handle: Any) -> list[MigDevice]:
    slots = int(worker.call(nvml.nvmlDeviceGetMaxMigDeviceCount, handle))
    devices: list[MigDevice] = []
    for slot in range(slots):
        try:
            mig = worker.call(nvml.nvmlDeviceGetMigDeviceHandleByIndex, handle, slot)
        except NvmlFault:
            raise
        except nvml.NVMLError as exc:
            if _named(exc, "NVMLError_NotFound", "NVMLError_InvalidArgument"):
                continue  # an empty slot
            raise
        name = _text(worker.call(nvml.nvmlDeviceGetName, mig))
        total, free, _used = _memory(nvml, worker, mig)
        devices.append(
            MigDevice(
                index=len(devices),
                profile=_profile(nvml, worker, mig, name, total),
                uuid=_text(worker.call(nvml.nvmlDeviceGetUUID, mig)),
                memory_gb=_gib(total),
                free_gb=_gib(free),
                processes=_processes(nvml, worker, mig),
            )
        )
    return devices


def _profile(nvml: ModuleType, worker: _Worker, mig: Any, name: str, total: int) -> str:
    """The profile from the MIG device's name (`... MIG 3g.40gb`), else from its attributes."""
    found = _MIG_PROFILE.search(name)
    if found:
        return found.group(1)
    attributes = worker.call(nvml.nvmlDeviceGetAttributes, mig)
    memory_gb = round(int(attributes.memorySizeMB) / MIB_PER_GIB) if attributes.memorySizeMB else round(total / GIB)
    return f"{int(attributes.gpuInstanceSliceCount)}g.{memory_gb}gb"


def _processes(nvml: ModuleType, worker: _Worker, handle: Any) -> list[ProcessUsage]:
    try:
        found = worker.call(nvml.nvmlDeviceGetComputeRunningProcesses, handle)
    except NvmlFault:
        raise
    except nvml.NVMLError as exc:
        if _named(exc, "NVMLError_NotSupported", "NVMLError_NoPermission"):
            return []
        raise
    by_pid: dict[int, ProcessUsage] = {}
    for process in found:
        used = getattr(process, "usedGpuMemory", None)
        by_pid[int(process.pid)] = ProcessUsage(pid=int(process.pid), memory_gb=_gib(used) if used is not None else None)
    return sorted(by_pid.values(), key=lambda p: p.pid)


def reason(nvml: ModuleType | None, exc: BaseException) -> str:
    """An NVML failure in words, with the error class for searching."""
    if isinstance(exc, NvmlFault):
        return str(exc)
    name = type(exc).__name__
    if name in _REASONS:
        return f"{_REASONS[name]} ({name})"
    if nvml is not None and isinstance(exc, getattr(nvml, "NVMLError", ())):
        return f"NVML error: {exc} ({name})"
    return f"NVML failed: {name}: {exc}"


def _named(exc: BaseException, *names: str) -> bool:
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _gib(value: int | float) -> float:
    return _round(float(value) / GIB)


def _round(value: float) -> float:
    return round(value, 2)

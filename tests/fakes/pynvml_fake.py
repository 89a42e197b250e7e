"""A stand-in for the `pynvml` module of nvidia-ml-py, driven by a described machine.

Same function names and parameters, same structures (ctypes, same fields), same error
classes (`NVMLError` mapping an error code to `NVMLError_<Name>` on construction) as
the real module, so the provider is exercised exactly as on a GPU host.
`tests/capacity/test_capacity_fake_parity.py` checks the names against the installed
real module. Load it with `load(machine)`; each load is a fresh module.
"""

from __future__ import annotations

import ctypes
import importlib.util
import string
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

MIB = 1024**2

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_INSUFFICIENT_SIZE = 7
NVML_ERROR_INSUFFICIENT_POWER = 8
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_IRQ_ISSUE = 11
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_CORRUPTED_INFOROM = 14
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_OPERATING_SYSTEM = 17
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_IN_USE = 19
NVML_ERROR_MEMORY = 20
NVML_ERROR_NO_DATA = 21
NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22
NVML_ERROR_INSUFFICIENT_RESOURCES = 23
NVML_ERROR_FREQ_NOT_SUPPORTED = 24
NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25
NVML_ERROR_DEPRECATED = 26
NVML_ERROR_NOT_READY = 27
NVML_ERROR_GPU_NOT_FOUND = 28
NVML_ERROR_INVALID_STATE = 29
NVML_ERROR_RESET_TYPE_NOT_SUPPORTED = 30
NVML_ERROR_UNKNOWN = 999

NVML_DEVICE_MIG_DISABLE = 0x0
NVML_DEVICE_MIG_ENABLE = 0x1
nvmlMemory_v2 = 0x02000028


class NVMLError(Exception):
    """As in pynvml: `NVMLError(code)` builds the subclass for that code."""

    _valClassMapping: dict[int, type] = {}
    _errcode_to_string = {
        NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_TIMEOUT: "Timeout",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
        NVML_ERROR_NOT_FOUND: "Not Found",
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_UNKNOWN: "Unknown Error",
    }

    value: int

    def __new__(typ, value: int) -> NVMLError:  # noqa: N804 - the real module's spelling
        if typ == NVMLError:
            typ = NVMLError._valClassMapping.get(value, typ)
        obj = Exception.__new__(typ)
        obj.value = value
        return obj

    def __str__(self) -> str:
        return self._errcode_to_string.get(self.value, f"NVML Error with code {self.value}")


def _extractNVMLErrorsAsClasses() -> None:  # noqa: N802 - the real module's name
    module = sys.modules[__name__]
    for err_name in [x for x in dir(module) if x.startswith("NVML_ERROR_")]:
        class_name = "NVMLError_" + string.capwords(err_name.replace("NVML_ERROR_", ""), "_").replace("_", "")
        err_val = getattr(module, err_name)

        def gen_new(val: int) -> Any:
            def new(typ: type, *args: Any) -> Any:
                return NVMLError.__new__(typ, val)

            return new

        cls = type(class_name, (NVMLError,), {"__new__": gen_new(err_val)})
        cls.__module__ = __name__
        setattr(module, class_name, cls)
        NVMLError._valClassMapping[err_val] = cls


class NVMLLibraryMismatchError(Exception):
    pass


class c_nvmlMemory_t(ctypes.Structure):  # noqa: N801 - the real module's name
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


class c_nvmlMemory_v2_t(ctypes.Structure):  # noqa: N801
    _fields_ = [
        ("version", ctypes.c_uint),
        ("total", ctypes.c_ulonglong),
        ("reserved", ctypes.c_ulonglong),
        ("free", ctypes.c_ulonglong),
        ("used", ctypes.c_ulonglong),
    ]


class c_nvmlProcessInfo_v2_t(ctypes.Structure):  # noqa: N801
    _fields_ = [
        ("pid", ctypes.c_uint),
        ("usedGpuMemory", ctypes.c_ulonglong),
        ("gpuInstanceId", ctypes.c_uint),
        ("computeInstanceId", ctypes.c_uint),
    ]


c_nvmlProcessInfo_v3_t = c_nvmlProcessInfo_v2_t
c_nvmlProcessInfo_t = c_nvmlProcessInfo_v3_t


class c_nvmlDeviceAttributes(ctypes.Structure):  # noqa: N801
    _fields_ = [
        ("multiprocessorCount", ctypes.c_uint),
        ("sharedCopyEngineCount", ctypes.c_uint),
        ("sharedDecoderCount", ctypes.c_uint),
        ("sharedEncoderCount", ctypes.c_uint),
        ("sharedJpegCount", ctypes.c_uint),
        ("sharedOfaCount", ctypes.c_uint),
        ("gpuInstanceSliceCount", ctypes.c_uint),
        ("computeInstanceSliceCount", ctypes.c_uint),
        ("memorySizeMB", ctypes.c_ulonglong),
    ]


class nvmlFriendlyObject:  # noqa: N801
    def __init__(self, dictionary: dict[str, Any]) -> None:
        for key, value in dictionary.items():
            setattr(self, key, value)


def nvmlStructToFriendlyObject(struct: ctypes.Structure) -> nvmlFriendlyObject:  # noqa: N802
    return nvmlFriendlyObject({name: getattr(struct, name) for name, _ in struct._fields_})


_extractNVMLErrorsAsClasses()


# --- the machine the fake answers for -------------------------------------------------


@dataclass
class FakeMig:
    profile: str
    uuid: str
    total_mib: int
    used_mib: int = 0
    processes: list[tuple[int, int]] = field(default_factory=list)  # (pid, MiB)
    gi_slices: int = 0
    name_has_profile: bool = True


@dataclass
class FakeGpu:
    name: str
    uuid: str
    total_mib: int
    used_mib: int = 0
    reserved_mib: int = 0
    processes: list[tuple[int, int]] = field(default_factory=list)  # (pid, MiB)
    mig: list[FakeMig] | None = None  # None: MIG disabled; a list: MIG enabled with these devices
    mig_supported: bool = True
    errors: dict[str, int] = field(default_factory=dict)  # function name -> NVML error code


@dataclass
class FakeMachine:
    gpus: list[FakeGpu] = field(default_factory=list)
    init_error: int | None = None
    count_error: int | None = None
    memory_v2: bool = True
    #: function name -> event the call waits on before answering (a hanging driver).
    hang: dict[str, threading.Event] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    initialised: int = 0


@dataclass(frozen=True)
class c_nvmlDevice_t:  # noqa: N801 - a handle, as the real module's pointer type
    gpu: int
    mig: int | None = None


MACHINE = FakeMachine()


def _enter(name: str, handle: c_nvmlDevice_t | None = None) -> None:
    MACHINE.calls.append(name)
    event = MACHINE.hang.get(name)
    if event is not None:
        event.wait()
    if name not in {"nvmlInit", "nvmlInitWithFlags"} and MACHINE.initialised <= 0:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    if handle is not None:
        code = MACHINE.gpus[handle.gpu].errors.get(name)
        if code is not None:
            raise NVMLError(code)


def _gpu(handle: c_nvmlDevice_t) -> FakeGpu:
    return MACHINE.gpus[handle.gpu]


def _mig(handle: c_nvmlDevice_t) -> FakeMig:
    assert handle.mig is not None and _gpu(handle).mig is not None
    return _gpu(handle).mig[handle.mig]  # type: ignore[index]


# --- the functions, with the real module's names and parameters -----------------------


def nvmlInitWithFlags(flags: int) -> None:  # noqa: N802
    _enter("nvmlInitWithFlags")
    if MACHINE.init_error is not None:
        raise NVMLError(MACHINE.init_error)
    MACHINE.initialised += 1


def nvmlInit() -> None:  # noqa: N802
    _enter("nvmlInit")
    if MACHINE.init_error is not None:
        raise NVMLError(MACHINE.init_error)
    MACHINE.initialised += 1


def nvmlShutdown() -> None:  # noqa: N802
    _enter("nvmlShutdown")
    MACHINE.initialised -= 1


def nvmlSystemGetDriverVersion() -> str:  # noqa: N802
    _enter("nvmlSystemGetDriverVersion")
    return "550.54.15"


def nvmlDeviceGetCount() -> int:  # noqa: N802
    _enter("nvmlDeviceGetCount")
    if MACHINE.count_error is not None:
        raise NVMLError(MACHINE.count_error)
    return len(MACHINE.gpus)


def nvmlDeviceGetHandleByIndex(index: int) -> c_nvmlDevice_t:  # noqa: N802
    _enter("nvmlDeviceGetHandleByIndex")
    if not 0 <= index < len(MACHINE.gpus):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    handle = c_nvmlDevice_t(index)
    code = MACHINE.gpus[index].errors.get("nvmlDeviceGetHandleByIndex")
    if code is not None:
        raise NVMLError(code)
    return handle


def nvmlDeviceGetIndex(handle: c_nvmlDevice_t) -> int:  # noqa: N802
    _enter("nvmlDeviceGetIndex", handle)
    return handle.gpu


def nvmlDeviceGetName(handle: c_nvmlDevice_t) -> str:  # noqa: N802
    _enter("nvmlDeviceGetName", handle)
    if handle.mig is not None:
        mig = _mig(handle)
        return f"{_gpu(handle).name} MIG {mig.profile}" if mig.name_has_profile else f"{_gpu(handle).name} MIG"
    return _gpu(handle).name


def nvmlDeviceGetUUID(handle: c_nvmlDevice_t) -> str:  # noqa: N802
    _enter("nvmlDeviceGetUUID", handle)
    return _mig(handle).uuid if handle.mig is not None else _gpu(handle).uuid


def nvmlDeviceGetMemoryInfo(handle: c_nvmlDevice_t, version: int | None = None) -> Any:  # noqa: N802
    _enter("nvmlDeviceGetMemoryInfo", handle)
    if handle.mig is not None:
        mig = _mig(handle)
        total, used, reserved = mig.total_mib, mig.used_mib, 0
    else:
        gpu = _gpu(handle)
        total, used, reserved = gpu.total_mib, gpu.used_mib, gpu.reserved_mib
    if not version:
        return c_nvmlMemory_t(total * MIB, (total - used - reserved) * MIB, (used + reserved) * MIB)
    if not MACHINE.memory_v2:
        raise NVMLError(NVML_ERROR_FUNCTION_NOT_FOUND)
    return c_nvmlMemory_v2_t(version, total * MIB, reserved * MIB, (total - used - reserved) * MIB, used * MIB)


def nvmlDeviceGetMigMode(device: c_nvmlDevice_t) -> list[int]:  # noqa: N802
    _enter("nvmlDeviceGetMigMode", device)
    gpu = _gpu(device)
    if not gpu.mig_supported:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    mode = NVML_DEVICE_MIG_ENABLE if gpu.mig is not None else NVML_DEVICE_MIG_DISABLE
    return [mode, mode]


def nvmlDeviceGetMaxMigDeviceCount(device: c_nvmlDevice_t) -> int:  # noqa: N802
    _enter("nvmlDeviceGetMaxMigDeviceCount", device)
    return 7


def nvmlDeviceGetMigDeviceHandleByIndex(device: c_nvmlDevice_t, index: int) -> c_nvmlDevice_t:  # noqa: N802
    _enter("nvmlDeviceGetMigDeviceHandleByIndex", device)
    devices = _gpu(device).mig or []
    if not 0 <= index < len(devices):
        raise NVMLError(NVML_ERROR_NOT_FOUND)
    return c_nvmlDevice_t(device.gpu, index)


def nvmlDeviceGetAttributes(device: c_nvmlDevice_t) -> c_nvmlDeviceAttributes:  # noqa: N802
    _enter("nvmlDeviceGetAttributes", device)
    attributes = c_nvmlDeviceAttributes()
    if device.mig is not None:
        mig = _mig(device)
        attributes.gpuInstanceSliceCount = mig.gi_slices or int(mig.profile.partition("g")[0])
        attributes.computeInstanceSliceCount = attributes.gpuInstanceSliceCount
        attributes.memorySizeMB = mig.total_mib
    return attributes


def nvmlDeviceGetComputeRunningProcesses(handle: c_nvmlDevice_t) -> list[nvmlFriendlyObject]:  # noqa: N802
    _enter("nvmlDeviceGetComputeRunningProcesses", handle)
    if handle.mig is not None:
        processes, gi = _mig(handle).processes, handle.mig
    else:
        processes, gi = _gpu(handle).processes, 0xFFFFFFFF
    return [nvmlStructToFriendlyObject(c_nvmlProcessInfo_t(pid, mib * MIB, gi, 0)) for pid, mib in processes]


# --- loading -----------------------------------------------------------------------------


def load(machine: FakeMachine) -> ModuleType:
    """A fresh copy of this module, named `pynvml`, answering for `machine`."""
    spec = importlib.util.spec_from_file_location("pynvml", Path(__file__))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pynvml"] = module  # _extractNVMLErrorsAsClasses looks itself up by name
    spec.loader.exec_module(module)
    module.MACHINE = machine
    return module

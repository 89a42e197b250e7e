"""The `nvml` provider, driven through a fake `pynvml` with the real module's names."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest
from nvml_fakes import FakeGpu, FakeMig, fake_nvml  # noqa: F401 - fake_nvml is a fixture

from policy.api import Linter
from policy.capacity.nvml import read_inventory
from policy.config import ProjectConfig
from policy.plan import ServingPlan
from policy.source import PlanSource

H100 = "NVIDIA H100 80GB HBM3"
A100_80 = "NVIDIA A100-SXM4-80GB"


def _h100(n: int, **kw: Any) -> Any:
    return FakeGpu(name=H100, uuid=f"GPU-h100-{n}", total_mib=81559, reserved_mib=520, **kw)


def _lint(plan: dict[str, Any], strict: bool = False) -> list[Any]:
    linter = Linter(ProjectConfig(strict_capacity=strict), capacity="nvml")
    report = linter.lint_sources([PlanSource(ServingPlan.model_validate(plan), file="plan.yaml")])
    return report.findings


def _capacity(findings: list[Any]) -> list[tuple[str, str]]:
    return [(f.severity, f.message) for f in findings if f.rule == "capacity-match"]


def test_whole_gpus_are_read_with_name_uuid_and_memory(fake_nvml: Any) -> None:
    fake_nvml.gpus = [_h100(0), _h100(1, used_mib=2048, processes=[(77, 2048)])]
    inventory = read_inventory(host="node-a")
    assert inventory.error == ""
    host = inventory.hosts[0]
    assert host.name == "node-a"
    first, second = host.devices
    assert (first.id, first.index, first.uuid, first.product) == ("gpu0", 0, "GPU-h100-0", H100)
    assert first.memory_gb == 79.65  # 81559 MiB
    assert first.free_gb == 79.14  # minus the 520 MiB the driver reserves
    assert first.mig_mode is False and first.processes == []
    assert [(p.pid, p.memory_gb) for p in second.processes] == [(77, 2.0)]
    assert fake_nvml.calls[-1] == "nvmlShutdown"


def test_memory_info_v2_is_asked_for_with_the_modules_version_constant(fake_nvml: Any) -> None:
    fake_nvml.gpus = [_h100(0, used_mib=3072)]  # 3 GiB used, but no process named
    device = read_inventory().hosts[0].devices[0]
    assert device.unattributed_gb == 3.0


def test_without_memory_info_v2_the_driver_reserve_is_not_mistaken_for_a_process(fake_nvml: Any) -> None:
    fake_nvml.memory_v2 = False
    fake_nvml.gpus = [_h100(0)]
    device = read_inventory().hosts[0].devices[0]
    assert device.memory_gb == 79.65 and device.unattributed_gb == 0.0


def test_mig_mode_lists_mig_devices_with_memory_and_processes(fake_nvml: Any) -> None:
    fake_nvml.gpus = [
        FakeGpu(
            name=A100_80,
            uuid="GPU-a100",
            total_mib=81920,
            mig=[
                FakeMig("3g.40gb", "MIG-0", 40192, used_mib=10240, processes=[(4242, 10240)]),
                FakeMig("3g.40gb", "MIG-1", 40192),
                FakeMig("1g.10gb", "MIG-2", 9728, name_has_profile=False),
            ],
        )
    ]
    device = read_inventory().hosts[0].devices[0]
    assert device.mig_mode is True
    assert [(m.index, m.profile, m.uuid, m.memory_gb) for m in device.mig] == [
        (0, "3g.40gb", "MIG-0", 39.25),
        (1, "3g.40gb", "MIG-1", 39.25),
        (2, "1g.10gb", "MIG-2", 9.5),  # profile from nvmlDeviceGetAttributes when the name lacks it
    ]
    assert [(p.pid, p.memory_gb) for p in device.mig[0].processes] == [(4242, 10.0)]


def test_a_gpu_without_mig_support_is_a_whole_gpu(fake_nvml: Any) -> None:
    fake_nvml.gpus = [FakeGpu(name="NVIDIA L4", uuid="GPU-l4", total_mib=23034, mig_supported=False)]
    device = read_inventory().hosts[0].devices[0]
    assert device.mig_mode is False and device.memory_gb == 22.49


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (
            "NVML_ERROR_LIBRARY_NOT_FOUND",
            "the NVML library (libnvidia-ml.so.1) is not installed: no NVIDIA driver on this machine (NVMLError_LibraryNotFound)",
        ),
        ("NVML_ERROR_DRIVER_NOT_LOADED", "the NVIDIA driver is not loaded (NVMLError_DriverNotLoaded)"),
        ("NVML_ERROR_NO_PERMISSION", "no permission to query the GPU through NVML (NVMLError_NoPermission)"),
        ("NVML_ERROR_GPU_IS_LOST", "the GPU is lost (it fell off the bus or needs a reset) (NVMLError_GpuIsLost)"),
        ("NVML_ERROR_TIMEOUT", "NVML timed out (NVMLError_Timeout)"),
        (
            "NVML_ERROR_LIB_RM_VERSION_MISMATCH",
            "the NVML library and the kernel driver versions differ (NVMLError_LibRmVersionMismatch)",
        ),
        ("NVML_ERROR_UNKNOWN", "NVML reported an unknown error (NVMLError_Unknown)"),
        ("NVML_ERROR_IRQ_ISSUE", "NVML error: NVML Error with code 11 (NVMLError_IrqIssue)"),
    ],
)
def test_each_nvml_error_at_start_becomes_the_reason(fake_nvml: Any, code: str, words: str) -> None:
    fake_nvml.init_error = getattr(sys.modules["pynvml"], code)
    inventory = read_inventory()
    assert inventory.error == words
    assert inventory.hosts == []


def test_an_error_while_counting_gpus_is_the_reason(fake_nvml: Any) -> None:
    pynvml = sys.modules["pynvml"]
    fake_nvml.count_error = pynvml.NVML_ERROR_NO_PERMISSION
    assert read_inventory().error == "no permission to query the GPU through NVML (NVMLError_NoPermission)"


@pytest.mark.parametrize(
    "function",
    ["nvmlDeviceGetHandleByIndex", "nvmlDeviceGetName", "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetComputeRunningProcesses"],
)
def test_a_lost_gpu_is_recorded_on_that_device_and_the_others_are_read(fake_nvml: Any, function: str) -> None:
    pynvml = sys.modules["pynvml"]
    fake_nvml.gpus = [_h100(0), _h100(1, errors={function: pynvml.NVML_ERROR_GPU_IS_LOST})]
    inventory = read_inventory()
    good, lost = inventory.hosts[0].devices
    assert good.error == "" and good.memory_gb == 79.65
    assert lost.error == "the GPU is lost (it fell off the bus or needs a reset) (NVMLError_GpuIsLost)"


@pytest.mark.parametrize(
    "function", ["nvmlInit", "nvmlDeviceGetCount", "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetMigDeviceHandleByIndex"]
)
def test_a_hanging_nvml_call_is_given_up_on(fake_nvml: Any, function: str) -> None:
    fake_nvml.gpus = [FakeGpu(name=A100_80, uuid="GPU-a100", total_mib=81920, mig=[FakeMig("7g.80gb", "MIG-0", 81152)])]
    fake_nvml.hang[function] = threading.Event()  # released when the test ends
    inventory = read_inventory(call_timeout_s=0.05)
    assert inventory.error == f"{function} did not return within 0.05 s"


def test_a_missing_pynvml_module_is_a_reason_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    assert read_inventory().error == "the pynvml module (nvidia-ml-py) is not installed"


# --- judged plans ------------------------------------------------------------------------


def test_unreadable_nvml_is_a_could_not_be_verified_warning(fake_nvml: Any) -> None:
    fake_nvml.init_error = sys.modules["pynvml"].NVML_ERROR_DRIVER_NOT_LOADED
    plan = {"gpus": [{"id": "gpu0", "memory_gb": 80}], "models": [{"name": "a", "gpu": "gpu0", "gpu_gb": 10}]}
    assert _capacity(_lint(plan)) == [
        ("warning", "gpu0: capacity could not be verified: the NVIDIA driver is not loaded (NVMLError_DriverNotLoaded)")
    ]


def test_strict_capacity_makes_could_not_be_verified_an_error(fake_nvml: Any) -> None:
    fake_nvml.init_error = sys.modules["pynvml"].NVML_ERROR_NO_PERMISSION
    plan = {"gpus": [{"id": "gpu0", "memory_gb": 80}], "models": [{"name": "a", "gpu": "gpu0", "gpu_gb": 10}]}
    assert _capacity(_lint(plan, strict=True)) == [
        ("error", "gpu0: capacity could not be verified: no permission to query the GPU through NVML (NVMLError_NoPermission)")
    ]


def test_a_lost_gpu_is_could_not_be_verified_for_the_plan_gpu_on_it(fake_nvml: Any) -> None:
    pynvml = sys.modules["pynvml"]
    fake_nvml.gpus = [_h100(0), _h100(1, errors={"nvmlDeviceGetMemoryInfo": pynvml.NVML_ERROR_GPU_IS_LOST})]
    plan = {
        "gpus": [{"id": "gpu0", "product": "H100"}, {"id": "gpu1", "product": "H100"}],
        "models": [{"name": "a", "gpu": "gpu0", "gpu_gb": 10}, {"name": "b", "gpu": "gpu1", "gpu_gb": 10}],
    }
    assert _capacity(_lint(plan)) == [
        (
            "warning",
            "gpu1: capacity could not be verified: index 1: the GPU is lost (it fell off the bus or needs a reset) (NVMLError_GpuIsLost)",
        )
    ]


def test_a_plan_declaring_more_memory_than_the_card_has_gets_capacity_match(fake_nvml: Any) -> None:
    fake_nvml.gpus = [FakeGpu(name="NVIDIA A100-SXM4-40GB", uuid="GPU-a40", total_mib=40960)]
    plan = {"gpus": [{"id": "gpu0", "memory_gb": 80}], "models": [{"name": "a", "gpu": "gpu0", "gpu_gb": 20}]}
    findings = _lint(plan)
    assert _capacity(findings) == [("error", "gpu0: declares 80.0 GiB, but index 0 NVIDIA A100-SXM4-40GB, GPU-a40 has 40.0 GiB")]


def test_a_plan_overflowing_the_smaller_card_is_one_memory_fit_error_with_both_figures(fake_nvml: Any) -> None:
    fake_nvml.gpus = [FakeGpu(name="NVIDIA A100-SXM4-40GB", uuid="GPU-a40", total_mib=40960)]
    plan = {"gpus": [{"id": "gpu0", "memory_gb": 80}], "models": [{"name": "a", "gpu": "gpu0", "gpu_gb": 50}]}
    findings = _lint(plan)
    # memory-fit judges the real card: 50.5 GiB does not fit in 40 GiB less headroom; one cause, one error.
    assert _capacity(findings) == []
    assert [f.message for f in findings if f.rule == "memory-fit"] == [
        "gpu0: 50.5 GiB committed > 38.0 GiB usable (40.0 GiB (the device's; 80.0 declared) − 5 % headroom); largest: a 50.5 GiB"
    ]


def test_memory_other_processes_hold_counts_against_the_plan(fake_nvml: Any) -> None:
    fake_nvml.gpus = [_h100(0, used_mib=20480, processes=[(4242, 20480)])]
    plan = {"gpus": [{"id": "gpu0", "product": "H100"}], "models": [{"name": "a", "gpu": "gpu0", "gpu_gb": 55}]}
    findings = _lint(plan)
    assert _capacity(findings) == [
        ("warning", "gpu0: 20.0 GiB already held by other processes (pid 4242 holds 20.0 GiB); counted as committed")
    ]
    # 55 + 0.5 context + 20 held = 75.5 GiB: still within 75.7 GiB usable.
    assert [f.message for f in findings if f.rule == "memory-fit"] == []
    plan["models"][0]["gpu_gb"] = 60  # type: ignore[index]
    assert [f.message for f in _lint(plan) if f.rule == "memory-fit"] == [
        "gpu0: 80.5 GiB committed > 75.7 GiB usable (79.6 GiB − 5 % headroom); largest: a 60.5 GiB"
    ]


def test_processes_on_a_mig_device_count_against_its_slice(fake_nvml: Any) -> None:
    fake_nvml.gpus = [
        FakeGpu(
            name=A100_80,
            uuid="GPU-a100",
            total_mib=81920,
            mig=[FakeMig("3g.40gb", "MIG-0", 40192), FakeMig("3g.40gb", "MIG-1", 40192, processes=[(99, 8192)])],
        )
    ]
    plan = {
        "gpus": [{"id": "gpu0", "product": "A100-80GB", "sharing": "mig", "mig": ["3g.40gb", "3g.40gb"]}],
        "models": [{"name": "a", "gpu": "gpu0:1", "gpu_gb": 30}],
    }
    findings = _lint(plan)
    assert _capacity(findings) == [
        ("warning", "gpu0:1: 8.0 GiB already held by other processes (pid 99 holds 8.0 GiB); counted as committed")
    ]
    assert [f.message for f in findings if f.rule == "memory-fit"] == [
        "gpu0:1: 38.5 GiB committed > 37.3 GiB usable (39.2 GiB − 5 % headroom); largest: a 30.5 GiB"
    ]


def test_a_mig_layout_other_than_the_devices_is_reported(fake_nvml: Any) -> None:
    fake_nvml.gpus = [FakeGpu(name=A100_80, uuid="GPU-a100", total_mib=81920, mig=[FakeMig("7g.80gb", "MIG-0", 81152)])]
    plan = {
        "gpus": [{"id": "gpu0", "product": "A100-80GB", "sharing": "mig", "mig": ["3g.40gb", "3g.40gb"]}],
        "models": [{"name": "a", "gpu": "gpu0:0", "gpu_gb": 10}],
    }
    assert _capacity(_lint(plan)) == [("error", "gpu0: declares MIG 3g.40gb, 3g.40gb, but the device reports 7g.80gb")]


def test_mig_enabled_on_a_gpu_the_plan_time_slices_is_reported(fake_nvml: Any) -> None:
    fake_nvml.gpus = [FakeGpu(name=A100_80, uuid="GPU-a100", total_mib=81920, mig=[])]
    plan = {"gpus": [{"id": "gpu0", "product": "A100-80GB"}], "models": [{"name": "a", "gpu": "gpu0", "gpu_gb": 10}]}
    assert _capacity(_lint(plan)) == [
        ("error", "gpu0: declares no MIG (time-slicing), but the device reports MIG enabled but no MIG devices")
    ]


ERROR_CODES = [
    "NVML_ERROR_LIBRARY_NOT_FOUND",
    "NVML_ERROR_DRIVER_NOT_LOADED",
    "NVML_ERROR_NO_PERMISSION",
    "NVML_ERROR_GPU_IS_LOST",
    "NVML_ERROR_TIMEOUT",
    "NVML_ERROR_LIB_RM_VERSION_MISMATCH",
    "NVML_ERROR_UNKNOWN",
    "NVML_ERROR_NOT_SUPPORTED",
]
DEVICE_CALLS = [
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetMigMode",
    "nvmlDeviceGetMaxMigDeviceCount",
    "nvmlDeviceGetMigDeviceHandleByIndex",
    "nvmlDeviceGetComputeRunningProcesses",
]


@pytest.mark.parametrize("function", DEVICE_CALLS)
@pytest.mark.parametrize("code", ERROR_CODES)
def test_every_nvml_error_on_every_device_call_stays_on_that_device(fake_nvml: Any, function: str, code: str) -> None:
    """Whatever call fails, with whatever error: no exception, the healthy GPU is read in
    full, and the plan is still judged (with a finding when the failing GPU is unverified)."""
    pynvml = sys.modules["pynvml"]
    broken = FakeGpu(
        name=A100_80,
        uuid="GPU-a100",
        total_mib=81920,
        mig=[FakeMig("7g.80gb", "MIG-0", 81152)],
        errors={function: getattr(pynvml, code)},
    )
    fake_nvml.gpus = [_h100(0), broken]
    inventory = read_inventory()
    assert inventory.error == ""
    good, other = inventory.hosts[0].devices
    assert good.error == "" and good.memory_gb == 79.65
    assert other.error == "" or "NVMLError_" in other.error
    findings = _lint({"gpus": [{"id": "gpu0", "product": "H100"}, {"id": "gpu1", "product": "A100-80GB"}], "models": []})
    assert all(f.rule == "capacity-match" for f in findings)
    if other.error:
        assert any("gpu1" in (f.gpu or "") + f.message for f in findings)

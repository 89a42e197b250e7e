"""`gpuadmit inspect` and `gpuadmit lint --capacity ...`, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from nvml_fakes import FakeGpu, FakeMig, fake_nvml  # noqa: F401 - fake_nvml is a fixture

from policy.capacity.file import load_capacity_file
from policy.cli import main
from policy.plan import ServingPlan

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "samples" / "seed-demo.yaml")
DATA = Path(__file__).parent / "data"


def _machine(fake: Any) -> None:
    fake.gpus = [
        FakeGpu(
            name="NVIDIA H100 80GB HBM3",
            uuid="GPU-h100-0",
            total_mib=81559,
            reserved_mib=520,
            used_mib=20480,
            processes=[(4242, 20480)],
        ),
        FakeGpu(
            name="NVIDIA A100-SXM4-80GB",
            uuid="GPU-a100-1",
            total_mib=81920,
            mig=[FakeMig("3g.40gb", "MIG-a", 40192), FakeMig("3g.40gb", "MIG-b", 40192)],
        ),
    ]


def test_inspect_without_nvml_prints_one_line_and_exits_2(fake_nvml: Any, capsys: pytest.CaptureFixture[str]) -> None:
    fake_nvml.init_error = sys.modules["pynvml"].NVML_ERROR_LIBRARY_NOT_FOUND
    assert main(["inspect"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "gpuadmit: cannot inspect GPUs: the NVML library (libnvidia-ml.so.1) is not installed: "
        "no NVIDIA driver on this machine (NVMLError_LibraryNotFound)\n"
    )


def test_inspect_prints_a_gpus_fragment_that_pastes_into_a_plan(fake_nvml: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _machine(fake_nvml)
    assert main(["inspect"]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert document["kind"] == "GpuInventory"
    assert document["gpus"] == [
        {"id": "gpu0", "index": 0, "uuid": "GPU-h100-0", "product": "NVIDIA H100 80GB HBM3", "memory_gb": 79.65},
        {
            "id": "gpu1",
            "index": 1,
            "uuid": "GPU-a100-1",
            "product": "NVIDIA A100-SXM4-80GB",
            "memory_gb": 80.0,
            "sharing": "mig",
            "mig": ["3g.40gb", "3g.40gb"],
        },
    ]
    assert document["usage"][0] == {"gpu": "gpu0", "free_gb": 59.14, "processes": [{"pid": 4242, "memory_gb": 20.0}]}
    plan = ServingPlan.model_validate({"gpus": document["gpus"], "models": []})
    assert [g.id for g in plan.gpus] == ["gpu0", "gpu1"]


def test_inspect_json_is_a_capacity_file(fake_nvml: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _machine(fake_nvml)
    assert main(["inspect", "--format", "json"]) == 0
    path = tmp_path / "inventory.json"
    path.write_text(capsys.readouterr().out)
    json.loads(path.read_text())
    [host] = load_capacity_file(path).hosts
    h100, a100 = host.devices
    assert [p.describe() for p in h100.processes] == ["pid 4242 holds 20.0 GiB"]
    assert [(m.profile, m.uuid, m.memory_gb) for m in a100.mig] == [("3g.40gb", "MIG-a", 39.25), ("3g.40gb", "MIG-b", 39.25)]


def test_lint_with_nvml_missing_still_lints_with_a_warning(fake_nvml: Any, capsys: pytest.CaptureFixture[str]) -> None:
    fake_nvml.init_error = sys.modules["pynvml"].NVML_ERROR_LIBRARY_NOT_FOUND
    assert main(["lint", "--capacity", "nvml", "--color", "never", SEED]) == 1  # the seed's own errors
    out = capsys.readouterr().out
    assert "warning capacity-match" in out
    assert "gpu0: capacity could not be verified: the NVML library (libnvidia-ml.so.1) is not installed" in out
    assert "latency-critical-priority" in out


def test_strict_capacity_flag_and_config_make_it_an_error(
    fake_nvml: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake_nvml.init_error = sys.modules["pynvml"].NVML_ERROR_DRIVER_NOT_LOADED
    safe = str(ROOT / "samples" / "seed-demo-safe.yaml")
    assert main(["lint", "--capacity", "nvml", "--color", "never", safe]) == 0
    assert "warning capacity-match" in capsys.readouterr().out
    assert main(["lint", "--capacity", "nvml", "--strict-capacity", "--color", "never", safe]) == 1
    assert "error   capacity-match" in capsys.readouterr().out
    config = tmp_path / ".gpuadmit.yaml"
    config.write_text("strict_capacity: true\n")
    assert main(["lint", "--capacity", "nvml", "--config", str(config), "--color", "never", safe]) == 1
    assert "the NVIDIA driver is not loaded (NVMLError_DriverNotLoaded)" in capsys.readouterr().out


def test_lint_against_a_node_file_reports_the_smaller_card(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--capacity", str(DATA / "nodes-plain.json"), "--color", "never", SEED]) == 1
    out = capsys.readouterr().out
    # The seed plan overflows the real 40 GiB card: one memory-fit error names both figures.
    assert "error   capacity-match" not in out
    assert "usable (40.0 GiB (the device's; 80.0 declared) − 5 % headroom)" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: Deployment\nmetadata: {name: x}\n", "not a capacity file: expected a GpuInventory"),
        ("gpus: [{id: gpu0, memory_gb: -1}]\n", "gpus[0].memory_gb: Input should be greater than 0"),
        ("kind: GpuInventory\ngpus: [{id: gpu0}]\nusage: [{gpu: gpu9}]\n", "usage: usage names GPU 'gpu9'"),
        ("gpus: [unclosed\n", "invalid YAML"),
    ],
)
def test_an_unusable_capacity_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "capacity.yaml"
    path.write_text(content)
    assert main(["lint", "--capacity", str(path), SEED]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err and "Traceback" not in err


def test_a_missing_capacity_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--capacity", "no-such-file.yaml", SEED]) == 2
    assert capsys.readouterr().err == (
        "gpuadmit: --capacity 'no-such-file.yaml': no such file; give declared, nvml, nodes (in a pod) "
        "or an inventory/Node file\n"
    )


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "policy.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_inspect_on_this_machine_without_an_nvidia_driver_exits_2_with_one_line() -> None:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has a working NVML")
    result = _run_cli("inspect")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("gpuadmit: cannot inspect GPUs: ") and result.stderr.count("\n") == 1
    lint = _run_cli("lint", "--capacity", "nvml", "--color", "never", "samples/seed-demo.yaml")
    assert lint.returncode == 1 and "gpu0: capacity could not be verified:" in lint.stdout

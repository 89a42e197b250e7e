"""The fake `pynvml` mirrors the installed nvidia-ml-py: names, parameters, structures, errors."""

from __future__ import annotations

import inspect

import pynvml as real  # the installed nvidia-ml-py
import pytest
from nvml_fakes import FAKE_MODULE as fake

FUNCTIONS = sorted(n for n in dir(fake) if n.startswith("nvml") and callable(getattr(fake, n)) and n[4:5].isupper())


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_fake_function_exists_in_pynvml_with_the_same_parameters(name: str) -> None:
    assert hasattr(real, name), f"pynvml has no {name}"
    fake_params = list(inspect.signature(getattr(fake, name)).parameters)
    real_params = list(inspect.signature(getattr(real, name)).parameters)
    assert fake_params == real_params


def test_error_codes_build_the_same_error_classes() -> None:
    codes = [n for n in dir(real) if n.startswith("NVML_ERROR_")]
    assert codes == [n for n in dir(fake) if n.startswith("NVML_ERROR_")]
    for code in codes:
        value = getattr(real, code)
        assert getattr(fake, code) == value
        assert type(fake.NVMLError(value)).__name__ == type(real.NVMLError(value)).__name__
    for name in (
        "NVMLError_LibraryNotFound",
        "NVMLError_DriverNotLoaded",
        "NVMLError_NoPermission",
        "NVMLError_GpuIsLost",
        "NVMLError_Timeout",
    ):
        assert issubclass(getattr(fake, name), fake.NVMLError) and issubclass(getattr(real, name), real.NVMLError)


@pytest.mark.parametrize("structure", ["c_nvmlMemory_t", "c_nvmlMemory_v2_t", "c_nvmlProcessInfo_t", "c_nvmlDeviceAttributes"])
def test_structures_have_the_same_fields(structure: str) -> None:
    assert [f[0] for f in getattr(fake, structure)._fields_] == [f[0] for f in getattr(real, structure)._fields_]


def test_constants_match() -> None:
    for name in ("nvmlMemory_v2", "NVML_DEVICE_MIG_ENABLE", "NVML_DEVICE_MIG_DISABLE", "NVML_SUCCESS"):
        assert getattr(fake, name) == getattr(real, name)

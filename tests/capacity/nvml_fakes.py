"""The fake `pynvml` (tests/fakes/pynvml_fake.py) and its machine description, for capacity tests."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "pynvml_fake.py"


def _fake_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpuadmit_tests_pynvml_fake", FAKE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


FAKE_MODULE = _fake_module()
FakeGpu: Any = FAKE_MODULE.FakeGpu
FakeMig: Any = FAKE_MODULE.FakeMig
FakeMachine: Any = FAKE_MODULE.FakeMachine


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Install a fake `pynvml` answering for an (initially empty) machine; yields the machine.

    Tests fill `machine.gpus` and the error knobs before reading the inventory; any
    call left hanging is released at the end. (A fixture here, not in a conftest.py:
    a second conftest module would shadow the top-level one for `from conftest import`.)
    """
    machine = FakeMachine()
    monkeypatch.setitem(sys.modules, "pynvml", sys.modules.get("pynvml"))
    FAKE_MODULE.load(machine)
    yield machine
    for event in machine.hang.values():
        event.set()

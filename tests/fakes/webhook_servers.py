"""Real `gpuadmit serve` processes over TLS for tests outside tests/webhook.

`tests/webhook/webhook_support.py` starts them; tests in other folders load it by its path,
once per run, rather than putting its folder on `sys.path` for the whole suite.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any


def webhook_support() -> Any:
    """The module `tests/webhook/webhook_support.py` (`start_server`, `Server`, ...)."""
    if "webhook_support" not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "webhook" / "webhook_support.py"
        spec = importlib.util.spec_from_file_location("webhook_support", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["webhook_support"] = module
        spec.loader.exec_module(module)
    return sys.modules["webhook_support"]

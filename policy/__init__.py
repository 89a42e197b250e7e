"""gpuadmit: rejects unsafe GPU model-serving configurations before they are deployed.

    from policy import lint
    report = lint("samples/seed-demo.yaml")
    for finding in report.findings: print(finding.rule, finding.message)

Importing this package starts nothing and needs no GPU; submodules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["lint", "suggest", "Linter", "Report", "Finding", "ServingPlan", "InputError", "__version__"]

if TYPE_CHECKING:
    from .api import Linter, lint
    from .errors import InputError
    from .plan import ServingPlan
    from .findings import Finding
    from .report import Report
    from .suggest import suggest

_LAZY = {
    "lint": "api",
    "suggest": "suggest",
    "Linter": "api",
    "Report": "report",
    "Finding": "findings",
    "ServingPlan": "plan",
    "InputError": "errors",
}


def __getattr__(name: str) -> Any:
    """Keep `import policy` cheap: the pre-commit path pays only for what it uses."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'policy' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)

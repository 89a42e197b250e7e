"""Imports run one way, as the data flows: readers → plan → facts → rules → report →
writers and entry points, with findings, severities and settings at the bottom. Each
module imports what it consumes or produces: readers the plan, the fact builder the
plan, the engine the facts and the report it fills in, writers the report.

Checked on the source (every `import` outside `if TYPE_CHECKING:`, function-level ones
included: they run too), so a change that makes an import run back up fails here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

#: Lowest first. A module may import modules of its own layer and of the layers below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "bottom",
        (
            "policy",
            "policy.findings",
            "policy.verdict",
            "policy.closest",
            "policy.settings",
            "policy.factschema",
            "policy.errors",
            "policy.unit_slips",
        ),
    ),
    (
        "parsing",
        (
            "policy.yamlio",
            "policy.plan",
            "policy.waivers",
            "policy.catalog",
            "policy.source",
            "policy.celcompile",
            "policy.rules",
            "policy.config",
            "policy.configured",
            "policy.ignore",
            "policy.capacity",
        ),
    ),
    ("readers", ("policy.readers", "policy.domains", "policy.cluster")),
    ("facts", ("policy.facts", "policy.protection")),
    ("report", ("policy.report",)),
    (
        "engine",
        (
            "policy.messages",
            "policy.unmatched_waivers",
            "policy.rulecompile",
            "policy.ruleeval",
            "policy.rulecache",
            "policy.engine",
            "policy.ruledocs",
        ),
    ),
    ("writers", ("policy.writers", "policy.cluster.policyreport")),
    ("entry points", ("policy.api", "policy.cli", "policy.ci", "policy.units", "policy.audit", "policy.suggest", "webhook")),
]

#: Layers that sit above one another but must not use each other all the same.
APART = {("facts", "readers"), ("engine", "readers"), ("writers", "engine")}

#: Modules that import nothing of gpuadmit's own (`policy` itself is the package's lazy front).
LEAVES = ("policy.findings", "policy.closest", "policy.settings", "policy.factschema", "policy.unit_slips")


def _layer(module: str) -> int:
    matches = [
        (len(prefix), rank)
        for rank, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or (module.startswith(prefix + ".") and prefix != "policy")  # the package itself: exactly
    ]
    assert matches, f"{module} is in no layer: add it to LAYERS in tests/test_layers.py"
    return max(matches)[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports under `if TYPE_CHECKING:` (they never run)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            lines.update(child.lineno for stmt in node.body for child in ast.walk(stmt) if hasattr(child, "lineno"))
    return lines


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for folder in ("policy", "webhook") for p in sorted((ROOT / folder).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports (a `from x import y` names x.y when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_only(tree)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {module for module in found if module in known and module != name}


def _edges() -> list[tuple[str, str]]:
    modules = _modules()
    known = set(modules)
    return [(name, target) for name, path in modules.items() for target in sorted(_imports(name, path, known))]


def test_no_import_runs_back_up() -> None:
    upward = [f"{a} ({LAYERS[_layer(a)][0]}) imports {b} ({LAYERS[_layer(b)][0]})" for a, b in _edges() if _layer(b) > _layer(a)]
    assert upward == []


def test_layers_that_must_not_use_each_other_do_not() -> None:
    crossing = [
        f"{a} ({LAYERS[_layer(a)][0]}) imports {b} ({LAYERS[_layer(b)][0]})"
        for a, b in _edges()
        if (LAYERS[_layer(a)][0], LAYERS[_layer(b)][0]) in APART
    ]
    assert crossing == []


def test_the_bottom_modules_import_nothing_of_ours() -> None:
    edges = _edges()
    assert [f"{a} imports {b}" for a, b in edges if a in LEAVES] == []


@pytest.mark.parametrize("module", LEAVES)
def test_importing_a_bottom_module_loads_no_other_module_of_ours(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('policy', 'webhook')))"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout.strip() == str(sorted(["policy", module]))


def test_the_checker_sees_a_function_level_import_running_back_up(tmp_path: Path) -> None:
    example = tmp_path / "example.py"
    example.write_text("def f():\n    from ..engine import RuleSet\n    from .. import facts\n")
    found = _imports("policy.readers.example", example, set(_modules()))
    assert found == {"policy.engine", "policy.facts"}
    assert all(_layer(target) > _layer("policy.readers.example") for target in found)

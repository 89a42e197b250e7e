"""The pre-commit path, `gpuadmit lint FILE`, loads only what linting needs.

With the rule cache warm, it imports neither the rule-file schema validator
(jsonschema), nor anything of the webhook, nor cel-cpp when every rule is translated
(compiled programs are read back only when one runs).
"""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, SAMPLES

PROBE = """
import runpy, sys
sys.argv = ["gpuadmit", "lint", sys.argv[1]]
try:
    runpy.run_module("policy.cli", run_name="__main__")
except SystemExit as exit:
    code = exit.code
print(code, sorted(sys.modules))
"""


def _lint_modules() -> tuple[str, set[str]]:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(SAMPLES / "seed-demo.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    code, _, modules = run.stdout.strip().splitlines()[-1].partition(" ")
    return code, set(eval(modules))  # noqa: S307 - our own probe's printed list


def test_warm_lint_imports_no_validator_webhook_or_cel() -> None:
    _lint_modules()  # fills the rule cache
    code, modules = _lint_modules()
    assert code == "1"  # the seed demo has findings: the lint really ran
    packages = {m.split(".")[0] for m in modules}
    assert not packages & {"jsonschema", "webhook", "starlette", "uvicorn", "cel_expr_python", "nvidia", "pynvml"}
    # A native plan needs no Kubernetes reader.
    assert "policy.readers.kubernetes" not in modules

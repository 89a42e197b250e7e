"""One verdict for every entry point: `gpuadmit lint`, `python -m policy.ci`, the library and
the webhook decide alike on the same plan under the same `fail_on`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_judging import SETTINGS, answer, client
from webhook_support import ROOT, review, sample_plan, serving_plan

from policy.api import lint

NEARLY_FULL = {
    "gpus": [{"id": "gpu0", "memory_gb": 80, "sharing": "exclusive"}],
    "models": [{"name": "summariser", "framework": "pytorch", "gpu": "gpu0", "gpu_gb": 70, "sla_ms": 2000}],
}
BROKEN = {"gpus": [{"id": "gpu0", "memory_gb": 24}], "models": [{"name": "m", "gpu": "gpu0", "gpu_gbb": 4}]}
PLANS: dict[str, dict[str, Any]] = {
    "unsafe": sample_plan("seed-demo.yaml"),
    "safe": sample_plan("seed-demo-safe.yaml"),
    "warnings-only": NEARLY_FULL,
    "unusable": BROKEN,
}


@pytest.mark.parametrize("fail_on", ["error", "warning", "never"])
@pytest.mark.parametrize("name", sorted(PLANS))
def test_every_entry_point_takes_the_same_decision(tmp_path: Path, name: str, fail_on: str) -> None:
    spec = {k: v for k, v in PLANS[name].items() if k not in ("apiVersion", "kind", "metadata")}
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"kind": "ServingPlan", "metadata": {"name": "node-a"}, **spec}))
    config = tmp_path / ".gpuadmit.yaml"
    config.write_text(f"fail_on: {fail_on}\n")

    cli = _run(tmp_path, "policy.cli", "lint", "--fail-on", fail_on, str(plan))
    ci = _run(tmp_path, "policy.ci", "--format", "text", "--fail-on", fail_on, str(plan))
    library = lint(plan, config=config).exit_code(fail_on)  # type: ignore[arg-type]
    webhook = answer(client(replace(SETTINGS, config_file=config)), review(serving_plan(spec)))

    assert cli == ci == library
    assert webhook["allowed"] is (cli == 0), json.dumps(webhook)
    expected = {
        "unusable": 2,
        "unsafe": 0 if fail_on == "never" else 1,
        "safe": 0,
        "warnings-only": 1 if fail_on == "warning" else 0,
    }
    assert cli == expected[name]


def _run(tmp: Path, module: str, *args: str) -> int:
    """`python -m MODULE ARGS` as a user (or the GitHub Action) runs it: the exit code."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"), "GITHUB_OUTPUT": ""},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode


def test_a_warning_denies_when_the_config_fails_on_warnings(tmp_path: Path) -> None:
    config = tmp_path / ".gpuadmit.yaml"
    config.write_text("fail_on: warning\n")
    body = answer(client(replace(SETTINGS, config_file=config)), review(serving_plan(NEARLY_FULL)))
    assert body["allowed"] is False
    assert body["status"]["message"] == (
        "gpuadmit: ServingPlan team-a/node-a is unsafe, 1 finding: [memory-headroom] gpu0: 70.5 of 80.0 GiB committed "
        "(88 % > 85 %) (fix: keep gpu0 below 85 % of its 80.0 GiB (≤ 68.0 GiB; 70.5 committed): trim instances, `gpu_gb` "
        "or `memory_fraction`)"
    )


def test_bad_input_is_denied_when_the_config_never_fails(tmp_path: Path) -> None:
    config = tmp_path / ".gpuadmit.yaml"
    config.write_text("fail_on: never\n")
    body = answer(client(replace(SETTINGS, config_file=config)), review(serving_plan(BROKEN)))
    assert body["allowed"] is False
    assert "[schema] models[0].gpu_gbb: unknown key; did you mean 'gpu_gb'?" in body["status"]["message"]


DEEP = 1000


def _deep_review() -> bytes:
    """A GPU Deployment with an annotation nested beyond Python's recursion limit (JSON allows it)."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "chat", "namespace": "team-a", "annotations": {"x": "@@DEEP@@"}},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}},
    }
    text = json.dumps(review(deployment, kind=("apps", "v1", "Deployment")))
    return text.replace('"@@DEEP@@"', '{"a":' * DEEP + "{}" + "}" * DEEP).encode()


def test_input_nested_too_deeply_is_bad_input_that_failing_open_never_allows() -> None:
    reply = client(replace(SETTINGS, fail_open=True)).post(
        "/validate", content=_deep_review(), headers={"content-type": "application/json"}
    )
    body = reply.json()["response"]
    assert body["allowed"] is False
    assert body["status"]["code"] == 403
    assert "[schema] nested too deeply to read" in body["status"]["message"]

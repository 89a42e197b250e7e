"""The GitHub Action, run locally: action.yml's own `run:` steps, in bash, with the
`GITHUB_*` variables a runner sets. It installs gpuadmit from the action's folder into a
fresh virtual environment, lints a workspace, and leaves SARIF, a job summary and step
outputs behind, exactly the files GitHub would read."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "writers" / "data" / "sarif-schema-2.1.0.json"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def load_action() -> dict[str, Any]:
    action: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    return action


@dataclass
class Runner:
    """Just enough of a GitHub runner for a composite action: expressions, env, outputs."""

    workspace: Path
    temp: Path
    summary: Path
    inputs: dict[str, str]
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    def expand(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            scope, _, rest = match.group(1).partition(".")
            if scope == "inputs":
                return self.inputs[rest]
            if scope == "github" and rest == "action_path":
                return str(ROOT)
            if scope == "github" and rest == "workspace":
                return str(self.workspace)
            if scope == "runner" and rest == "temp":
                return str(self.temp)
            if scope == "steps":
                step, _, output = rest.partition(".outputs.")
                return self.outputs.get(step, {}).get(output, "")
            raise AssertionError(f"action.yml uses an expression this runner does not know: {match.group(0)}")

        return EXPRESSION.sub(value, text)

    def run(self, step: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        output_file = self.temp / f"output-{step.get('id', 'step')}"
        output_file.write_text("", encoding="utf-8")
        script = self.temp / "step.sh"
        script.write_text(self.expand(step["run"]), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
        env.update({name: self.expand(str(value)) for name, value in (step.get("env") or {}).items()})
        env.update(
            GITHUB_ACTIONS="true",
            GITHUB_WORKSPACE=str(self.workspace),
            GITHUB_ACTION_PATH=str(ROOT),
            GITHUB_OUTPUT=str(output_file),
            GITHUB_STEP_SUMMARY=str(self.summary),
            RUNNER_TEMP=str(self.temp),
        )
        assert step.get("shell") == "bash"
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        outputs = dict(line.split("=", 1) for line in output_file.read_text(encoding="utf-8").splitlines() if "=" in line)
        self.outputs[step.get("id", "")] = outputs
        return proc


@dataclass
class ActionRun:
    runner: Runner
    lint: subprocess.CompletedProcess[str]
    skipped: list[str]


def steps() -> list[dict[str, Any]]:
    return list(load_action()["runs"]["steps"])


def lint_step() -> dict[str, Any]:
    return next(step for step in steps() if step.get("id") == "lint")


@pytest.fixture(scope="module")
def action_run(tmp_path_factory: pytest.TempPathFactory) -> ActionRun:
    """Every step of the action once, on a workspace holding the seed demo and its safe twin."""
    workspace = tmp_path_factory.mktemp("workspace")
    (workspace / "plans").mkdir()
    for name in ("seed-demo.yaml", "seed-demo-safe.yaml"):
        shutil.copy(ROOT / "samples" / name, workspace / "plans" / name)
    temp = tmp_path_factory.mktemp("runner-temp")
    summary = temp / "step-summary.md"
    summary.write_text("# Earlier step\n\nkept\n", encoding="utf-8")
    action = load_action()
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    inputs["paths"] = "plans/"
    runner = Runner(workspace, temp, summary, inputs)
    skipped: list[str] = []
    lint: subprocess.CompletedProcess[str] | None = None
    for step in action["runs"]["steps"]:
        if "uses" in step:  # marketplace actions (setup-python) are the runner's business
            skipped.append(step["uses"])
            continue
        proc = runner.run(step)
        if step.get("id") == "lint":
            lint = proc
        else:
            assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lint is not None
    return ActionRun(runner, lint, skipped)


def test_action_is_composite_with_the_documented_inputs_and_outputs() -> None:
    action = load_action()
    assert action["runs"]["using"] == "composite"
    assert {"paths", "fail-on", "format", "python-version", "source", "sarif-file"} <= set(action["inputs"])
    assert {"sarif-file", "errors", "warnings", "exit-code"} <= set(action["outputs"])


def test_only_setup_python_is_delegated(action_run: ActionRun) -> None:
    assert action_run.skipped == ["actions/setup-python@v5"]


def test_lint_step_fails_the_job_on_the_seed_demo_errors(action_run: ActionRun) -> None:
    assert action_run.lint.returncode == 1, action_run.lint.stderr
    outputs = action_run.runner.outputs["lint"]
    assert (outputs["errors"], outputs["warnings"], outputs["waived"], outputs["exit-code"]) == ("6", "0", "0", "1")


def test_lint_step_annotates_the_findings(action_run: ActionRun) -> None:
    annotations = [line for line in action_run.lint.stdout.splitlines() if line.startswith("::")]
    assert len(annotations) == 6
    assert all(line.startswith("::error file=plans/seed-demo.yaml,line=") for line in annotations)


def test_sarif_file_is_written_valid_and_relative_to_the_workspace(action_run: ActionRun) -> None:
    sarif_file = Path(action_run.runner.outputs["lint"]["sarif-file"])
    assert sarif_file == action_run.runner.temp / "gpuadmit.sarif"
    log = json.loads(sarif_file.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(json.loads(SCHEMA.read_text(encoding="utf-8"))).validate(log)
    results = log["runs"][0]["results"]
    assert len(results) == 6
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert uris == {"plans/seed-demo.yaml"}


def test_job_summary_is_appended_with_memory_bars_and_findings(action_run: ActionRun) -> None:
    summary = action_run.runner.summary.read_text(encoding="utf-8")
    assert summary.startswith("# Earlier step\n\nkept\n")
    first = "## gpuadmit:" + summary.split("## gpuadmit:")[1]  # later tests append more runs
    assert first.startswith("## gpuadmit: 🛑 6 errors, 0 warnings, 0 info, 0 waived in 2 plans\n")
    assert first.count("| `gpu0` | time-slicing | `[███") == 2
    assert len([line for line in first.splitlines() if line.startswith("| 🛑 error |")]) == 6


def test_rerun_on_the_safe_plan_passes_and_appends_again(action_run: ActionRun) -> None:
    runner = action_run.runner
    runner.inputs = {**runner.inputs, "paths": "plans/seed-demo-safe.yaml", "sarif-file": str(runner.temp / "safe.sarif")}
    runs_before = runner.summary.read_text(encoding="utf-8").count("## gpuadmit:")
    proc = runner.run(lint_step())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert runner.outputs["lint"]["errors"] == "0"
    summary = runner.summary.read_text(encoding="utf-8")
    assert summary.count("## gpuadmit:") == runs_before + 1
    assert summary.split("## gpuadmit:")[-1].startswith(" ✅ 0 errors")
    assert json.loads((runner.temp / "safe.sarif").read_text(encoding="utf-8"))["runs"][0]["results"] == []


def test_fail_on_never_reports_but_passes(action_run: ActionRun) -> None:
    runner = action_run.runner
    runner.inputs = {**runner.inputs, "paths": "plans/seed-demo.yaml", "fail-on": "never", "summary": "false"}
    before = runner.summary.read_text(encoding="utf-8")
    proc = runner.run(lint_step())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert runner.outputs["lint"]["errors"] == "6"
    assert runner.summary.read_text(encoding="utf-8") == before


def test_ci_script_appends_to_an_existing_summary_and_writes_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from policy import ci

    monkeypatch.chdir(ROOT)
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    summary.write_text("earlier\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    code = ci.main(
        ["--paths", "samples/seed-demo.yaml 'samples/seed-demo-safe.yaml'", "--sarif", str(tmp_path / "out" / "g.sarif")]
    )
    assert code == 1
    assert summary.read_text(encoding="utf-8").startswith("earlier\n## gpuadmit: 🛑 6 errors")
    written = dict(line.split("=", 1) for line in outputs.read_text(encoding="utf-8").splitlines())
    assert written == {
        "sarif-file": str(tmp_path / "out" / "g.sarif"),
        "errors": "6",
        "warnings": "0",
        "info": "0",
        "waived": "0",
        "exit-code": "1",
    }
    assert capsys.readouterr().out.count("::error file=samples/seed-demo.yaml,") == 6


def test_ci_script_reports_a_broken_config_as_one_annotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from policy import ci

    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    config = tmp_path / "gpuadmit.yaml"
    config.write_text("rules: {bulk-caped: {enabled: false}}\n", encoding="utf-8")
    assert ci.main(["samples/seed-demo.yaml", "--config", str(config)]) == 2
    assert (
        capsys.readouterr().out
        == "::error title=gpuadmit::rules.bulk-caped: no rule 'bulk-caped' to configure; did you mean 'bulk-capped'?\n"
    )


def test_a_repository_outside_the_workspace_is_read_only_when_files_root_names_it(action_run: ActionRun, tmp_path: Path) -> None:
    runner = action_run.runner
    repo = tmp_path / "models"
    shutil.copytree(ROOT / "samples" / "triton", repo)
    (repo / "gpuadmit.yaml").unlink()
    (runner.workspace / "node").mkdir(exist_ok=True)
    (runner.workspace / "node" / "node.yaml").write_text(
        "kind: ServingPlan\nmetadata: {name: node}\ngpus: [{id: gpu0, product: H100}]\n"
        f"triton: {{repository: '{repo}', args: [--model-repository=/models]}}\n",
        encoding="utf-8",
    )
    runner.inputs = {**runner.inputs, "paths": "node/", "fail-on": "never", "summary": "false", "format": "github"}
    proc = runner.run(lint_step())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "repository-read" in proc.stdout and "outside the folders being linted" in proc.stdout
    runner.inputs = {**runner.inputs, "files-root": str(tmp_path)}
    proc = runner.run(lint_step())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "repository-read" not in proc.stdout and "chat-llm" in proc.stdout  # the repository's models judged

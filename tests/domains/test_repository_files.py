"""A configuration repository holds more than serving configuration: Helm templates, CI
workflows, compose files, editor settings with comments. None of them is an error; what
gpuadmit cannot judge is said in the output; `ignore:` globs are never read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import run_cli

DATA = Path(__file__).parent / "data"

HELM_TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "chart.fullname" . }}
spec:
  replicas: {{ .Values.replicaCount }}
  template:
    spec:
      containers:
        - name: vllm
          resources:
            limits:
              nvidia.com/gpu: {{ .Values.gpus }}
"""

WORKFLOW = """\
name: ci
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    steps: [{uses: actions/checkout@v4}]
"""

COMPOSE = """\
services:
  vllm:
    image: vllm/vllm-openai:v0.8.5
    deploy: {resources: {reservations: {devices: [{driver: nvidia, count: 1, capabilities: [gpu]}]}}}
"""

TSCONFIG = """\
{
  // editor settings, not serving configuration
  "compilerOptions": {"strict": true, "outDir": "dist/", /* trailing comma below */},
  "include": ["src/**/*"],
}
"""


def _repository(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(DATA / "shared-a100", repo / "apps")
    (repo / "apps" / "embeddings.yaml").unlink()  # what remains passes
    (repo / "charts" / "chat" / "templates").mkdir(parents=True)
    (repo / "charts" / "chat" / "templates" / "deployment.yaml").write_text(HELM_TEMPLATE, encoding="utf-8")
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW, encoding="utf-8")
    (repo / "compose.yaml").write_text(COMPOSE, encoding="utf-8")
    (repo / "tsconfig.json").write_text(TSCONFIG, encoding="utf-8")
    return repo


def test_a_folder_with_helm_templates_workflows_compose_and_jsonc_passes_with_a_note(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    run = run_cli("lint", str(repo), "--format", "json", cwd=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    notes = json.loads(run.stdout)["findings"]
    assert len(notes) == 1
    assert notes[0]["severity"] == "info" and notes[0]["file"].endswith("charts/chat/templates/deployment.yaml")
    assert "unrendered Helm template" in notes[0]["message"]


def test_the_helm_note_is_named_in_the_text_output(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    run = run_cli("lint", str(repo), cwd=tmp_path)
    assert run.code == 0
    assert "charts/chat/templates/deployment.yaml" in run.stdout and "skipped" in run.stdout


def test_a_helm_template_named_explicitly_is_a_note_not_exit_2(tmp_path: Path) -> None:
    template = tmp_path / "deployment.yaml"
    template.write_text(HELM_TEMPLATE, encoding="utf-8")
    run = run_cli("lint", str(template), cwd=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    assert "unrendered Helm template" in run.stdout


def test_ignore_globs_in_the_project_config_are_never_read(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    (repo / "broken").mkdir()
    (repo / "broken" / "plan.yaml").write_text("models: [\n", encoding="utf-8")
    assert run_cli("lint", str(repo), cwd=repo).code == 2
    (repo / ".gpuadmit.yaml").write_text("ignore: [broken/**, charts]\n", encoding="utf-8")
    run = run_cli("lint", str(repo), "--format", "json", cwd=repo)
    assert run.code == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["findings"] == []  # the chart is ignored, so no note either


def test_an_ignored_file_named_on_the_command_line_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "generated").mkdir()
    bad = tmp_path / "generated" / "x.yaml"
    bad.write_text("models: [\n", encoding="utf-8")
    (tmp_path / ".gpuadmit.yaml").write_text("ignore: ['generated/*.yaml']\n", encoding="utf-8")
    assert run_cli("lint", str(bad), cwd=tmp_path).code == 0


def test_a_plan_in_json_with_comments_is_still_unusable_input(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{\n  // one GPU\n  "gpu_gb": 80, "models": []\n}\n', encoding="utf-8")
    run = run_cli("lint", str(plan), cwd=tmp_path)
    assert run.code == 2
    assert "plan.json:2" in run.stdout + run.stderr


def test_a_markdown_file_named_explicitly_is_a_note_not_a_yaml_error(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Serving\n\nRun it with:\n- a\n  b: [\n")
    run = run_cli("lint", str(readme), "samples/seed-demo-safe.yaml")
    assert run.code == 0, run.stdout + run.stderr
    assert "README.md: not serving configuration (.md file): skipped" in run.stdout
    assert "invalid YAML" not in run.stdout

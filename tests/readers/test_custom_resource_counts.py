"""A malformed count in a custom resource (`replicas: "4"`, `-1`, `true`, `2.5`) is bad
input naming the file, the field's line and its path, as every other malformed field is:
exit 2 from lint (tests/webhook/test_bad_counts_denied.py: denied by the webhook even
when it fails open). Never a silent 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli
from policy.api import Linter

GPU = "resources: {limits: {nvidia.com/gpu: 1}}"
POD = f"spec: {{containers: [{{name: c, image: vllm/vllm-openai:v0.8.5, {GPU}}}]}}"

#: (kind, manifest with `{value}` where the count goes, the field's path).
MANIFESTS: dict[str, tuple[str, str]] = {
    "RayCluster replicas": (
        f"""apiVersion: ray.io/v1
kind: RayCluster
metadata: {{name: ray}}
spec:
  headGroupSpec:
    template: {{spec: {{containers: [{{name: head, image: rayproject/ray:2.9.0}}]}}}}
  workerGroupSpecs:
    - groupName: gpu
      replicas: {{value}}
      template: {{{POD}}}
""",
        "spec.workerGroupSpecs[0].replicas",
    ),
    "RayService maxReplicas": (
        f"""apiVersion: ray.io/v1
kind: RayService
metadata: {{name: ray}}
spec:
  rayClusterConfig:
    workerGroupSpecs:
      - groupName: gpu
        replicas: 1
        maxReplicas: {{value}}
        template: {{{POD}}}
""",
        "spec.rayClusterConfig.workerGroupSpecs[0].maxReplicas",
    ),
    "LeaderWorkerSet replicas": (
        f"""apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata: {{name: lws}}
spec:
  replicas: {{value}}
  leaderWorkerTemplate:
    size: 2
    workerTemplate: {{{POD}}}
""",
        "spec.replicas",
    ),
    "LeaderWorkerSet size": (
        f"""apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata: {{name: lws}}
spec:
  replicas: 1
  leaderWorkerTemplate:
    size: {{value}}
    workerTemplate: {{{POD}}}
""",
        "spec.leaderWorkerTemplate.size",
    ),
    "NIMService replicas": (
        f"""apiVersion: apps.nvidia.com/v1alpha1
kind: NIMService
metadata: {{name: nim}}
spec:
  image: {{repository: nvcr.io/nim/meta/llama3-8b-instruct, tag: 1.0.3}}
  replicas: {{value}}
  {GPU}
""",
        "spec.replicas",
    ),
    "NIMService hpa maxReplicas": (
        f"""apiVersion: apps.nvidia.com/v1alpha1
kind: NIMService
metadata: {{name: nim}}
spec:
  image: {{repository: nvcr.io/nim/meta/llama3-8b-instruct, tag: 1.0.3}}
  {GPU}
  scale:
    hpa:
      maxReplicas: {{value}}
""",
        "spec.scale.hpa.maxReplicas",
    ),
    "VLLMRuntime replicas": (
        """apiVersion: production-stack.vllm.ai/v1alpha1
kind: VLLMRuntime
metadata: {name: rt}
spec:
  vllmConfig: {gpuMemoryUtilization: "0.7"}
  deploymentConfig:
    resources: {gpu: "1"}
    image: {registry: docker.io, name: "vllm/vllm-openai:v0.8.5"}
    replicas: {value}
""",
        "spec.deploymentConfig.replicas",
    ),
    "LLMInferenceService prefill replicas": (
        f"""apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata: {{name: pd}}
spec:
  template: {{containers: [{{name: main, image: vllm/vllm-openai:v0.8.5, {GPU}}}]}}
  prefill:
    replicas: {{value}}
    template: {{containers: [{{name: main, image: vllm/vllm-openai:v0.8.5, {GPU}}}]}}
""",
        "spec.prefill.replicas",
    ),
}

MALFORMED = ['"4"', "-1", "true", "2.5"]
SHOWN = {'"4"': "'4'", "-1": "-1", "true": "True", "2.5": "2.5"}


def _manifest(kind: str, value: str) -> tuple[str, int]:
    """The manifest with `value` as its count, and the line the count is on."""
    template, _ = MANIFESTS[kind]
    text = template.replace("{value}", value)
    line = next(n for n, row in enumerate(template.splitlines(), 1) if "{value}" in row)
    return text, line


@pytest.mark.parametrize("value", MALFORMED)
@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_a_malformed_count_is_bad_input_at_its_line(tmp_path: Path, kind: str, value: str) -> None:
    text, line = _manifest(kind, value)
    path = tmp_path / "object.yaml"
    path.write_text(text)
    report = Linter().lint_paths([path])
    assert report.exit_code() == 2
    (finding,) = report.findings
    assert (finding.rule, finding.severity, finding.file, finding.line) == ("schema", "error", str(path), line)
    assert finding.message == f"{MANIFESTS[kind][1]}: expected a whole number ≥ 0, got {SHOWN[value]}"


@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_a_well_formed_count_is_read(tmp_path: Path, kind: str) -> None:
    text, _ = _manifest(kind, "3")
    path = tmp_path / "object.yaml"
    path.write_text(text)
    report = Linter().lint_paths([path])
    assert report.exit_code() != 2, [f.message for f in report.findings]
    assert report.plans and any(report.plans[0].facts.models)


def test_lint_says_it_in_one_line_and_exits_2(tmp_path: Path) -> None:
    text, line = _manifest("LeaderWorkerSet size", "2.5")
    path = tmp_path / "lws.yaml"
    path.write_text(text)
    run = run_cli("lint", str(path))
    assert run.code == 2
    assert f"{path}:{line}:5: spec.leaderWorkerTemplate.size: expected a whole number ≥ 0, got 2.5" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr

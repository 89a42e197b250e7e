"""Findings readers make pass through the rule configuration like any other: an override
either applies to them or is refused when the rules load. One test (at least) per
reader-made rule id: `schema`, `memory-declared`, `repository-read`, `latency-critical-priority`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from conftest import run_cli

from policy.api import Linter, lint
from policy.config import load_config
from policy.errors import RuleError
from policy.readers import read_documents
from policy.yamlio import load_documents

#: Every rule id a reader reports findings under (grep `rule=` in policy/readers).
READER_RULES = {"schema", "memory-declared", "repository-read", "latency-critical-priority"}

TRITONSERVER = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: triton
  annotations: {gpuadmit.dev/gpu-gb: "16"%s}
spec:
  template:
    spec:
      nodeSelector: {nvidia.com/gpu.product: NVIDIA-L4}
      containers:
        - name: triton
          image: nvcr.io/nvidia/tritonserver:25.01-py3
          args: [tritonserver, --model-repository=/models]
          resources: {limits: {nvidia.com/gpu: "1"}}
"""


def _config(tmp_path: Path, rules: str) -> Path:
    path = tmp_path / ".gpuadmit.yaml"
    path.write_text(f"rules:\n{rules}", encoding="utf-8")
    return path


def _findings(config: Path, path: Path, rule: str) -> list[tuple[str, str]]:
    return [(f.severity, f.message) for f in lint(path, config=config).findings if f.rule == rule]


def test_every_reader_made_rule_id_is_a_rule_file() -> None:
    from policy.engine import RuleSet

    assert READER_RULES <= {r.id for r in RuleSet.load().rules}


# --- schema: overrides refused -----------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("{enabled: false}", "rules.schema.enabled: schema cannot be disabled: unusable input cannot be waved through"),
        (
            "{severity: info}",
            "rules.schema.severity: schema keeps its own severities: its errors mean the input could not be used",
        ),
        ("{severity: error}", "rules.schema.severity: schema keeps its own severities"),
    ],
)
def test_overriding_schema_is_refused_at_load_with_one_line(tmp_path: Path, override: str, message: str) -> None:
    config = _config(tmp_path, f"  schema: {override}\n")
    with pytest.raises(RuleError, match=message):
        Linter(load_config(config))
    run = run_cli("lint", "--config", str(config), "samples/seed-demo-safe.yaml")
    assert run.code == 2
    assert run.stderr.count("\n") == 1 and message in run.stderr
    listed = run_cli("rules", "list", "--config", str(config))
    assert listed.code == 2 and message in listed.stderr


def test_enabling_schema_is_accepted_and_changes_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "plan.yaml"
    broken.write_text("gpus: [{id: gpu0, memory_gb: 24}]\nmodels: [{name: m, gpu: gpu0, gpu_gbb: 4}]\n")
    report = lint(broken, config=_config(tmp_path, "  schema: {enabled: true}\n"))
    assert report.exit_code() == 2


# --- memory-declared: the reader's estimate note follows the rule ------------------------


def _repository(tmp_path: Path) -> Path:
    model = tmp_path / "repo" / "ranker"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text('name: "ranker"\nbackend: "pytorch"\ninstance_group [ { count: 1, kind: KIND_GPU } ]\n')
    (model / "1" / "model.pt").write_bytes(b"\0" * 4096)
    return tmp_path / "repo"


def test_disabling_memory_declared_drops_the_readers_estimate_note(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    (note,) = _findings(_config(tmp_path, "  isolation: {enabled: true}\n"), repo, "memory-declared")
    assert note[0] == "info" and "ranker: gpu_gb 0.00 GiB is an estimate from the model files" in note[1]
    assert _findings(_config(tmp_path, "  memory-declared: {enabled: false}\n"), repo, "memory-declared") == []


def test_memory_declared_severity_caps_the_rule_and_leaves_the_note_a_note(tmp_path: Path) -> None:
    unknown = tmp_path / "plan.yaml"
    unknown.write_text(
        "gpus: [{id: gpu0, product: L4}]\n"
        "models: [{name: emb, framework: pytorch, gpu: gpu0}, {name: chat, framework: pytorch, gpu: gpu0, gpu_gb: 4}]\n"
    )
    config = _config(tmp_path, "  memory-declared: {severity: warning}\n")
    assert [s for s, _ in _findings(config, unknown, "memory-declared")] == ["warning"]
    assert [s for s, _ in _findings(config, _repository(tmp_path), "memory-declared")] == ["info"]


# --- repository-read: severity applies, disabling refused ---------------------------------


def test_repository_read_severity_override_applies_to_the_readers_finding(tmp_path: Path) -> None:
    manifest = tmp_path / "triton.yaml"
    manifest.write_text(TRITONSERVER % "")
    assert [s for s, _ in _findings(_config(tmp_path, "  isolation: {enabled: true}\n"), manifest, "repository-read")] == [
        "warning"
    ]
    assert [s for s, _ in _findings(_config(tmp_path, "  repository-read: {severity: info}\n"), manifest, "repository-read")] == [
        "info"
    ]


def test_repository_read_lowered_to_warning_admits_an_annotated_repository_with_a_warning(tmp_path: Path) -> None:
    """The webhook's own reading goes through the configuration too."""
    from webhook.judge import judge
    from webhook.review import parse_review

    annotated = TRITONSERVER % ', gpuadmit.dev/triton-repository: "/models"'
    (doc,) = load_documents(annotated, "deployment/team-a/triton")
    obj = dict(doc.data)
    obj["metadata"] = {**obj["metadata"], "namespace": "team-a"}
    review = parse_review(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u",
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "operation": "CREATE",
                "object": obj,
            },
        }
    )
    strict = judge(Linter(), review)
    assert strict.allowed is False and "[repository-read]" in (strict.message or "")
    lowered = judge(Linter(load_config(_config(tmp_path, "  repository-read: {severity: warning}\n"))), review)
    assert lowered.allowed is True
    assert any(
        w.startswith("[repository-read] triton: gpuadmit.dev/triton-repository was not followed") for w in lowered.warnings
    )
    sources = read_documents([replace(doc, data=obj)], "deployment/team-a/triton")
    assert [f.severity for s in sources for f in s.findings if f.rule == "repository-read"] == ["error"]


def test_disabling_repository_read_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, "  repository-read: {enabled: false}\n")
    with pytest.raises(
        RuleError, match="rules.repository-read.enabled: repository-read cannot be disabled: a repository that was not read"
    ):
        Linter(load_config(config))


# --- latency-critical-priority: the reader's note on a priority Triton never applies -------


def test_disabling_latency_critical_priority_drops_the_readers_note(tmp_path: Path) -> None:
    model = tmp_path / "repo" / "guard"
    model.mkdir(parents=True)
    (model / "config.pbtxt").write_text(
        'name: "guard"\nbackend: "onnxruntime"\n'
        "instance_group [ { count: 1, kind: KIND_GPU, rate_limiter { priority: 2 } } ]\n"
        'parameters: { key: "gpuadmit.gpu_gb", value: { string_value: "1" } }\n'
    )
    repo = tmp_path / "repo"
    (note,) = _findings(_config(tmp_path, "  isolation: {enabled: true}\n"), repo, "latency-critical-priority")
    assert note[0] == "info" and "guard: rate_limiter priority 2 is never applied" in note[1]
    assert (
        _findings(_config(tmp_path, "  latency-critical-priority: {enabled: false}\n"), repo, "latency-critical-priority") == []
    )

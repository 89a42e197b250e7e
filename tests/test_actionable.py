"""Findings a user can act on where the config lives: fix hints in the input's own words,
unit slips named, every schema error of a file at once, waivers that waive nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.api import Linter
from policy.config import load_config
from policy.unit_slips import unit_hint

FIXTURES = Path(__file__).parent / "rules"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture(scope="module")
def linter() -> Linter:
    return Linter()


def _fix(linter: Linter, path: Path, rule: str) -> str:
    (finding,) = [f for f in linter.lint_paths([path]).findings if f.rule == rule]
    assert finding.fix is not None
    return finding.fix


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("memory_gb", "80GB", "give GiB as a number: 80"),
        ("gpu-gb", "80 GiB", "give GiB as a number: 80"),
        ("gpu_gb", "40960MiB", "give GiB as a number: 40"),
        ("memory_gb", 81920, "looks like MiB: 80 GiB?"),
        ("memory_gb", 81559, "looks like MiB: 79.65 GiB?"),
        ("sla_ms", "200ms", "give milliseconds as a number: 200"),
        ("sla_ms", "0.2s", "give milliseconds as a number: 200"),
        ("memory_gb", 80, ""),
        ("memory_gb", "eighty", ""),
        ("memory_gb", 10**400, ""),
        ("name", "80GB", ""),
    ],
)
def test_unit_slips_get_a_hint(field: str, value: object, hint: str) -> None:
    assert unit_hint(field, value) == hint


def test_every_schema_error_of_a_plan_is_reported_in_one_run(linter: Linter, tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        "gpus:\n"
        "  - {id: gpu0, memory_gb: 80GB}\n"
        "  - {id: gpu1, memory_gb: 81920}\n"
        "models:\n"
        "  - {name: chat, gpu: gpu0, gpu_gb: 42, sla_ms: 200ms, latency_critical: true}\n"
        "  - {name: emb, gpu: gpu1, gpu_gb: 2, instancez: 2}\n",
        encoding="utf-8",
    )
    report = linter.lint_paths([path])
    schema = [(f.line, f.message) for f in report.findings if f.rule == "schema"]
    assert schema == [
        (
            2,
            "gpus[0].memory_gb: Input should be a valid number, unable to parse string as a number (got '80GB'); give GiB as a number: 80",
        ),
        (3, "gpus[1].memory_gb: Input should be less than or equal to 4096 (got 81920); looks like MiB: 80 GiB?"),
        (
            5,
            "models[0].sla_ms: Input should be a valid number, unable to parse string as a number (got '200ms'); give milliseconds as a number: 200",
        ),
        (6, "models[1].instancez: unknown key; did you mean 'instances'?"),
    ]
    assert report.exit_code() == 2


def test_a_kubernetes_annotation_in_the_wrong_unit_gets_a_hint(linter: Linter, tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: emb\n  annotations: {gpuadmit.dev/gpu-gb: 80GB}\n"
        "spec:\n  template:\n    spec:\n      containers:\n        - name: c\n          image: e:1\n"
        "          resources: {limits: {nvidia.com/gpu: 1}}\n",
        encoding="utf-8",
    )
    (finding,) = [f for f in linter.lint_paths([path]).findings if f.rule == "schema"]
    assert finding.message.endswith("expected a number, got '80GB'; give GiB as a number: 80")
    assert finding.line == 5


def test_a_triton_gpuadmit_parameter_in_the_wrong_unit_gets_a_hint(linter: Linter, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.pbtxt").write_text(
        'name: "m"\nbackend: "onnxruntime"\nmax_batch_size: 8\n'
        'parameters: { key: "gpuadmit.gpu_gb", value: { string_value: "81920" } }\n'
        'parameters: { key: "gpuadmit.sla_ms", value: { string_value: "50ms" } }\n',
        encoding="utf-8",
    )
    messages = [f.message for f in linter.lint_paths([tmp_path]).findings if f.rule == "schema"]
    assert "m: parameter gpuadmit.sla_ms: expected float, got '50ms'; give milliseconds as a number: 50" in messages
    assert any("(got 81920.0); looks like MiB: 80 GiB?" in m for m in messages), messages


def test_fix_hints_speak_the_language_of_the_input(linter: Linter) -> None:
    plan = _fix(linter, FIXTURES / "bulk-capped" / "fail-uncapped.yaml", "bulk-capped")
    triton = _fix(linter, FIXTURES / "bulk-capped" / "fail-triton-priority-only", "bulk-capped")
    kubernetes = _fix(linter, SAMPLES / "k8s" / "chat-and-embeddings.yaml", "isolation")
    assert plan.startswith("cap emb: `caps: {max_batch_size: ...}`")
    assert triton.startswith("cap embeddings in its config.pbtxt: `max_batch_size`, or an instance_group `rate_limiter`")
    assert kubernetes.startswith("give chat-llm a MIG resource (`nvidia.com/mig-3g.40gb: 1`)")
    assert "priorityClassName does not order GPU time" in kubernetes


def test_a_queue_fix_in_triton_gives_the_timeout_in_microseconds(linter: Linter) -> None:
    fix = _fix(linter, FIXTURES / "latency-critical-queue" / "fail-triton-priority-level-timeout", "latency-critical-queue")
    assert "default_timeout_microseconds: 25000" in fix


def test_only_the_plans_own_waivers_are_checked(tmp_path: Path) -> None:
    (tmp_path / ".gpuadmit.yaml").write_text(
        "waivers:\n  - {rule: bulk-capped, model: some-other-team-model, reason: theirs, expires: 2099-01-01}\n",
        encoding="utf-8",
    )
    linter = Linter(config=load_config(tmp_path / ".gpuadmit.yaml"))
    report = linter.lint_paths([SAMPLES / "seed-demo-safe.yaml"])
    assert [f for f in report.findings if f.rule == "waiver-unmatched"] == []


def test_kubernetes_findings_point_at_the_node_selector_and_the_engine_flag(linter: Linter) -> None:
    from policy.readers import read_paths

    path = SAMPLES / "k8s" / "chat-and-embeddings.yaml"
    (overflow,) = [f for f in linter.lint_paths([path]).findings if f.rule == "memory-fit"]
    text = path.read_text(encoding="utf-8").splitlines()
    assert text[overflow.line - 1].strip().startswith("nvidia.com/gpu.product:")  # type: ignore[operator]
    source = read_paths([path]).sources[0]
    line = source.positions[("model", "chat-llm", "memory_fraction")][0]
    assert text[line - 1].strip() == "- --gpu-memory-utilization"


def test_mps_client_limits_are_read_from_the_container_env(tmp_path: Path) -> None:
    from policy.readers import read_paths

    path = tmp_path / "mps.yaml"
    path.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: emb\n  annotations: {gpuadmit.dev/sharing: mps}\n"
        "spec:\n  template:\n    spec:\n      containers:\n        - name: c\n          image: e:1\n"
        '          env:\n            - {name: CUDA_MPS_ACTIVE_THREAD_PERCENTAGE, value: "30"}\n'
        '            - {name: CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, value: "0=4G,1=2048M"}\n'
        "          resources: {limits: {nvidia.com/gpu: 1}}\n",
        encoding="utf-8",
    )
    (model,) = read_paths([path]).sources[0].plan.models
    assert model.caps == {"compute_pct": 30.0, "pinned_memory_gb": 4.0}

"""`gpuadmit` as a user runs it: exit codes, the seed demo, one-line input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SAMPLES, run_cli

SEED_FINDINGS = {
    ("latency-critical-priority", "chat-llm"),
    ("latency-critical-priority", "guard"),
    ("latency-critical-rate-limit", "chat-llm"),
    ("latency-critical-rate-limit", "guard"),
    ("bulk-capped", "embeddings"),
    ("bulk-capped", "reranker"),
}


def test_seed_demo_fits_but_is_unsafe() -> None:
    run = run_cli("lint", str(SAMPLES / "seed-demo.yaml"))
    assert run.code == 1
    assert "51.0 GiB declared" in run.stdout
    assert "/ 80.0 GiB committed" in run.stdout
    assert "memory-fit" not in run.stdout
    for rule, model in SEED_FINDINGS:
        assert any(rule in line and f"{model}:" in line for line in run.stdout.splitlines()), (rule, model)
    assert "6 errors, 0 warnings" in run.stdout


def test_seed_demo_json_lists_exactly_the_seed_findings() -> None:
    run = run_cli("lint", "--format", "json", str(SAMPLES / "seed-demo.yaml"))
    assert run.code == 1
    report = json.loads(run.stdout)
    assert {(f["rule"], f["model"]) for f in report["findings"]} == SEED_FINDINGS
    for finding in report["findings"]:
        assert finding["file"].endswith("seed-demo.yaml")
        assert finding["line"] in {4, 5, 6, 7}
        assert finding["fix"]
        assert finding["gpu"] == "gpu0"
    (gpu,) = report["plans"][0]["gpus"]
    assert gpu["capacity_gb"] == 80
    assert gpu["declared_gb"] == 51
    assert gpu["committed_gb"] == 53  # + 4 CUDA contexts of 0.5 GiB
    assert gpu["usable_gb"] == 76


def test_seed_demo_json_form_gives_the_same_verdict(tmp_path: Path) -> None:
    seed = {
        "GPU_GB": 80,
        "models": [
            {"name": "chat-llm", "gpu_gb": 42, "sla_ms": 200, "latency_critical": True},
            {"name": "embeddings", "gpu_gb": 2, "sla_ms": 30, "latency_critical": False},
            {"name": "reranker", "gpu_gb": 6, "sla_ms": 50, "latency_critical": False},
            {"name": "guard", "gpu_gb": 1, "sla_ms": 20, "latency_critical": True},
        ],
    }
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))
    run = run_cli("lint", "--format", "json", str(path))
    assert run.code == 1
    assert {(f["rule"], f["model"]) for f in json.loads(run.stdout)["findings"]} == SEED_FINDINGS


def test_safe_seed_demo_passes() -> None:
    run = run_cli("lint", str(SAMPLES / "seed-demo-safe.yaml"))
    assert run.code == 0, run.stdout
    assert "0 errors, 0 warnings" in run.stdout


def test_warnings_fail_only_when_asked(tmp_path: Path) -> None:
    plan = tmp_path / "tight.yaml"
    plan.write_text("gpus: [{id: gpu0, memory_gb: 80}]\nmodels: [{name: a, gpu: gpu0, gpu_gb: 72}]\n")
    assert run_cli("lint", str(plan)).code == 0
    assert run_cli("lint", "--fail-on", "warning", str(plan)).code == 1
    assert run_cli("lint", "--fail-on", "never", str(SAMPLES / "seed-demo.yaml")).code == 0


BAD_INPUTS = {
    "empty.yaml": (b"", "empty file", None),
    "binary.yaml": (b"\x7fELF\x02\x01\x01\x00\x00\x00" * 30, "binary file", None),
    "wrong-type.yaml": (
        b"gpus: [{id: gpu0, memory_gb: 80}]\nmodels:\n  - {name: a, gpu: gpu0, gpu_gb: lots}\n",
        "models[0].gpu_gb: Input should be a valid number",
        3,
    ),
    "negative.yaml": (
        b"gpus: [{id: gpu0, memory_gb: 80}]\nmodels:\n  - name: a\n    gpu: gpu0\n    instances: -2\n",
        "models[0].instances: Input should be greater than or equal to 0",
        5,
    ),
    "absurd.yaml": (
        b"gpus: [{id: gpu0, memory_gb: 80}]\nmodels:\n  - name: a\n    gpu: gpu0\n    gpu_gb: 40000\n",
        "models[0].gpu_gb: Input should be less than or equal to 4096",
        5,
    ),
    "nan.yaml": (b"gpus: [{id: gpu0, memory_gb: .nan}]\nmodels: []\n", "gpus[0].memory_gb: Input should be a finite number", 1),
    "unknown-key.yaml": (
        b"gpus: [{id: gpu0, memory_gb: 80}]\nmodels:\n  - name: a\n    gpu: gpu0\n    latency_critcal: true\n",
        "models[0].latency_critcal: unknown key; did you mean 'latency_critical'?",
        5,
    ),
    "unknown-setting.yaml": (
        b"gpus: [{id: gpu0, memory_gb: 80}]\nmodels:\n  - name: a\n    gpu: gpu0\n    rate_limit:\n      max_concurency: 4\n",
        "models[0].rate_limit.max_concurency: unknown key; did you mean 'max_concurrency'?",
        6,
    ),
    "nul-in-name.yaml": (
        b'gpus: [{id: gpu0, memory_gb: 80}]\nmodels:\n  - {name: "chat\\0hidden", gpu: gpu0}\n',
        "'chat\\x00hidden' holds a NUL character",
        1,
    ),
    "duplicate-key.yaml": (
        b"gpus: [{id: gpu0, memory_gb: 80}]\nmodels:\n  - name: a\n    gpu: gpu0\n    gpu: gpu1\n",
        "gpu: duplicate key (first defined on line 4)",
        5,
    ),
    "bad-yaml.yaml": (b"models: [\n  {name: a\n", "invalid YAML", 3),
    "bad-json.json": (b'{"models": [}', "invalid JSON", 1),
    "not-utf8.yaml": (b"models:\n  - name: caf\xe9\n", "not valid UTF-8", 2),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, name: str) -> None:
    content, message, line = BAD_INPUTS[name]
    path = tmp_path / name
    path.write_bytes(content)
    run = run_cli("lint", str(path))
    assert run.code == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    lines = [ln for ln in run.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    where = f"{path}:{line}" if line else str(path)
    assert where in lines[0]
    assert message in lines[0]
    assert "schema" in lines[0]


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 10):
        prev, cur = chr(ord("a") + n - 1), chr(ord("a") + n)
        levels.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("models: []\nx:\n" + "".join(f"  {lvl}\n" for lvl in levels))
    run = run_cli("lint", str(path))
    assert run.code == 2
    assert "alias bomb" in run.stdout


def test_one_bad_file_does_not_hide_the_others(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("models: {oops: 1}\n")
    (tmp_path / "seed.yaml").write_text((SAMPLES / "seed-demo.yaml").read_text())
    run = run_cli("lint", "--format", "json", str(tmp_path))
    assert run.code == 2
    rules = {f["rule"] for f in json.loads(run.stdout)["findings"]}
    assert {"schema", "bulk-capped", "latency-critical-priority"} <= rules


def test_missing_path_and_bad_usage_exit_2() -> None:
    run = run_cli("lint", "no/such/file.yaml")
    assert run.code == 2 and "no such file or folder" in run.stdout
    run = run_cli("lint", "--format", "pdf", str(SAMPLES / "seed-demo.yaml"))
    assert run.code == 2 and "unknown format 'pdf'" in run.stderr
    run = run_cli("frobnicate")
    assert run.code == 2 and "Traceback" not in run.stderr


def test_lint_folder_reads_every_sample() -> None:
    run = run_cli("lint", "--format", "json", str(SAMPLES))
    report = json.loads(run.stdout)
    names = {p["name"] for p in report["plans"]}
    assert {"seed-demo", "seed-demo-safe", "fleet-mps", "mig-a100", "vllm-trtllm-shared"} <= names
    assert run.code == 1


def test_rules_list_and_explain() -> None:
    run = run_cli("rules", "list")
    assert run.code == 0
    listed = {line.split()[0] for line in run.stdout.splitlines()}
    assert {"memory-fit", "bulk-capped", "schema", "waiver-expired"} <= listed
    run = run_cli("rules", "explain", "memory-fit")
    assert run.code == 0 and "CUDA context" in run.stdout and "severity: error" in run.stdout
    run = run_cli("rules", "explain", "memory-fitt")
    assert run.code == 2 and "did you mean 'memory-fit'?" in run.stderr


def test_schema_is_generated_from_the_plan_model() -> None:
    run = run_cli("schema")
    assert run.code == 0
    schema = json.loads(run.stdout)
    model = schema["$defs"]["Model"]["properties"]
    assert "GiB" in model["gpu_gb"]["description"]
    assert {"latency_critical", "priority", "rate_limit", "caps", "memory_fraction"} <= set(model)
    rule_schema = json.loads(run_cli("schema", "--kind", "rule").stdout)
    assert {"id", "validations", "params"} <= set(rule_schema["properties"])


def test_project_config_disables_rules_and_changes_severity(tmp_path: Path) -> None:
    (tmp_path / ".gpuadmit.yaml").write_text(
        "rules:\n"
        "  bulk-capped: {enabled: false}\n"
        "  latency-critical-priority: {severity: warning}\n"
        "  latency-critical-rate-limit: {severity: info}\n"
    )
    sub = tmp_path / "plans"
    sub.mkdir()
    (sub / "seed.yaml").write_text((SAMPLES / "seed-demo.yaml").read_text())
    run = run_cli("lint", "--format", "json", "plans/seed.yaml", cwd=tmp_path)
    findings = json.loads(run.stdout)["findings"]
    assert {f["rule"] for f in findings} == {"latency-critical-priority", "latency-critical-rate-limit"}
    assert {f["severity"] for f in findings if f["rule"] == "latency-critical-priority"} == {"warning"}
    assert run.code == 0  # nothing at error severity is left


def test_project_config_typo_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / ".gpuadmit.yaml").write_text("rules:\n  memory-fitt: {enabled: false}\n")
    run = run_cli("lint", str(SAMPLES / "seed-demo.yaml"), cwd=tmp_path)
    assert run.code == 2
    assert "no rule 'memory-fitt' to configure; did you mean 'memory-fit'?" in run.stderr
    (tmp_path / ".gpuadmit.yaml").write_text("acounting: {cuda_context_gb: 1}\n")
    run = run_cli("lint", str(SAMPLES / "seed-demo.yaml"), cwd=tmp_path)
    assert run.code == 2
    assert ".gpuadmit.yaml:1:1: acounting: unknown key; did you mean 'accounting'?" in run.stderr


def test_accounting_changes_the_numbers(tmp_path: Path) -> None:
    (tmp_path / ".gpuadmit.yaml").write_text("accounting: {cuda_context_gb: 0.8, headroom_pct: 10}\n")
    run = run_cli("lint", "--format", "json", str(SAMPLES / "seed-demo.yaml"), cwd=tmp_path)
    (gpu,) = json.loads(run.stdout)["plans"][0]["gpus"]
    assert gpu["committed_gb"] == pytest.approx(51 + 4 * 0.8)
    assert gpu["usable_gb"] == pytest.approx(72)


def test_waiver_in_the_config_is_reported_as_waived(tmp_path: Path) -> None:
    (tmp_path / ".gpuadmit.yaml").write_text(
        "waivers:\n"
        "  - {rule: bulk-capped, model: embeddings, reason: runs only at night, expires: 2999-01-01}\n"
        "  - {rule: bulk-capped, model: reranker, reason: runs only at night, expires: 2999-01-01}\n"
    )
    run = run_cli("lint", "--format", "json", str(SAMPLES / "seed-demo.yaml"), cwd=tmp_path)
    findings = json.loads(run.stdout)["findings"]
    waived = [f for f in findings if f["waived"]]
    assert {(f["rule"], f["model"]) for f in waived} == {("bulk-capped", "embeddings"), ("bulk-capped", "reranker")}
    assert all(f["waiver_reason"] == "runs only at night" for f in waived)
    text = run_cli("lint", str(SAMPLES / "seed-demo.yaml"), cwd=tmp_path).stdout
    assert "(waived: runs only at night)" in text


def test_catalog_lists_products_with_nvml_memory_and_mig_profiles() -> None:
    run = run_cli("catalog")
    assert run.code == 0
    h100 = next(line for line in run.stdout.splitlines() if line.startswith("H100-80GB"))
    assert "81559 MiB" in h100 and "3g.40gb×2" in h100
    assert any(line.startswith("L40S") and "no MIG" in line for line in run.stdout.splitlines())
    gh200 = next(line for line in run.stdout.splitlines() if line.startswith("GH200-144GB"))
    assert "146831 MiB" in gh200 and "3g.72gb×2 (70.5 GiB)" in gh200 and "1g.18gb+me×1" in gh200
    assert "  A100         A100-40GB | A100-80GB" in run.stdout.splitlines()


def test_a_report_path_that_cannot_be_written_is_a_one_line_error_exit_2(tmp_path: Path) -> None:
    run = run_cli("lint", str(SAMPLES / "seed-demo-safe.yaml"), "-o", str(tmp_path / "missing" / "report.json"))
    assert run.code == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        f"gpuadmit: {tmp_path / 'missing' / 'report.json'}: -o: cannot write the report: No such file or directory"
    ]


@pytest.mark.parametrize("value", ["nan", "-1", "inf"])
def test_serve_refuses_a_cluster_stale_after_that_is_not_a_finite_non_negative_time(value: str) -> None:
    run = run_cli("serve", "--plain-http", "--cluster-stale-after", value)
    assert run.code == 2, run.stderr
    assert (
        run.stderr.startswith(f"gpuadmit: --cluster-stale-after {float(value)} must be at least 0.0")
        and "Traceback" not in run.stderr
    )


def test_cluster_kube_without_the_kubernetes_client_is_a_one_line_error_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import ROOT

    # As on an install without the `kube` extra: importing lightkube fails.
    script = "import sys; sys.modules['lightkube'] = None; from policy.cli import main; raise SystemExit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", script, "lint", "--cluster", "kube", str(SAMPLES / "seed-demo-safe.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "gpuadmit: --cluster kube needs the Kubernetes client: pip install 'gpuadmit[kube]'"

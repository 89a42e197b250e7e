"""`--cluster FILE`: manifests judged with what a cluster snapshot already runs in their
sharing domains, and `gpuadmit audit` over every domain of the snapshot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from conftest import run_cli

DATA = Path(__file__).parent / "data"
SNAPSHOT = DATA / "snapshot.yaml"
OVERFLOWING = DATA / "new-embeddings.yaml"
FITTING = DATA / "new-embeddings-small.yaml"


def report(*args: str) -> tuple[int, dict[str, Any]]:
    run = run_cli(*args, "--format", "json")
    assert "Traceback" not in run.stderr, run.stderr
    return run.code, json.loads(run.stdout)


def test_a_deployment_that_fits_alone_fails_beside_what_the_cluster_runs() -> None:
    assert run_cli("lint", str(OVERFLOWING)).code == 0
    code, found = report("lint", "--cluster", str(SNAPSHOT), str(OVERFLOWING))
    assert code == 1
    assert [p["name"] for p in found["plans"]] == ["shared-nvidia-a100-sxm4-80gb"]
    fit = [f for f in found["findings"] if f["rule"] == "memory-fit"]
    assert len(fit) == 1
    assert fit[0]["message"].startswith("shared-nvidia-a100-sxm4-80gb: 81.5 GiB committed > 76.0 GiB usable")
    assert fit[0]["file"] == str(OVERFLOWING)  # the domain is shown at the given manifest
    models = {m["name"] for g in found["plans"][0]["gpus"] for m in g["models"]}
    assert models == {"chat-llm", "embeddings"}


def test_a_deployment_that_fits_beside_what_the_cluster_runs_passes() -> None:
    code, found = report("lint", "--cluster", str(SNAPSHOT), str(FITTING))
    assert code == 0
    gpus = found["plans"][0]["gpus"]
    assert gpus[0]["committed_gb"] == 57.0


def test_owned_replica_sets_and_pods_are_counted_through_their_deployment() -> None:
    code, found = report("audit", "--cluster", str(SNAPSHOT))
    assert code == 0
    shared = next(p for p in found["plans"] if p["name"] == "shared-nvidia-a100-sxm4-80gb")
    assert [m["name"] for g in shared["gpus"] for m in g["models"]] == ["chat-llm"]


def test_a_manifest_of_a_running_workload_replaces_it_instead_of_doubling_it(tmp_path: Path) -> None:
    snapshot = yaml.safe_load(SNAPSHOT.read_text(encoding="utf-8"))
    chat = next(i for i in snapshot["items"] if i["kind"] == "Deployment" and i["metadata"]["name"] == "chat-llm")
    changed = tmp_path / "chat-llm.yaml"
    changed.write_text(yaml.safe_dump(chat), encoding="utf-8")
    code, found = report("lint", "--cluster", str(SNAPSHOT), str(changed))
    assert code == 0
    assert found["plans"][0]["gpus"][0]["committed_gb"] == 48.5
    chat["spec"]["replicas"] = 2  # two replicas of a 0.6 fraction cannot share one GPU
    changed.write_text(yaml.safe_dump(chat), encoding="utf-8")
    code, found = report("lint", "--cluster", str(SNAPSHOT), str(changed))
    assert code == 1
    assert any(f["rule"] == "memory-fit" for f in found["findings"])


def test_a_node_label_says_the_gpus_are_time_sliced(tmp_path: Path) -> None:
    """A product without the -SHARED suffix whose nodes report a sharing strategy is shared."""
    snapshot = SNAPSHOT.read_text(encoding="utf-8").replace("NVIDIA-A100-SXM4-80GB-SHARED", "NVIDIA-A100-SXM4-80GB")
    (tmp_path / "snapshot.yaml").write_text(snapshot, encoding="utf-8")
    manifest = OVERFLOWING.read_text(encoding="utf-8").replace("NVIDIA-A100-SXM4-80GB-SHARED", "NVIDIA-A100-SXM4-80GB")
    (tmp_path / "embeddings.yaml").write_text(manifest, encoding="utf-8")
    code, found = report("lint", "--cluster", str(tmp_path / "snapshot.yaml"), str(tmp_path / "embeddings.yaml"))
    assert code == 1
    assert any(f["rule"] == "memory-fit" for f in found["findings"])


def test_an_unreadable_snapshot_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "snapshot.yaml"
    bad.write_text("items: [\n", encoding="utf-8")
    run = run_cli("lint", "--cluster", str(bad), str(FITTING))
    assert run.code == 2
    assert run.stderr.startswith(f"gpuadmit: {bad}:") and "Traceback" not in run.stderr


def _overcommitted_cluster(tmp_path: Path) -> Path:
    """The snapshot with the overflowing embeddings already running beside chat-llm."""
    path = tmp_path / "snapshot.yaml"
    path.write_text(SNAPSHOT.read_text(encoding="utf-8") + OVERFLOWING.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def test_audit_reports_every_domain_of_the_cluster(tmp_path: Path) -> None:
    code, found = report("audit", "--cluster", str(_overcommitted_cluster(tmp_path)))
    assert code == 1
    assert sorted(p["name"] for p in found["plans"]) == ["shared-nvidia-a100-sxm4-80gb", "trainer"]
    rules = {
        name: {f["rule"] for f in found["findings"] if f["plan"] == name} for name in ("trainer", "shared-nvidia-a100-sxm4-80gb")
    }
    assert rules["trainer"] == set()
    # One overflow, one error: memory-fit, naming the vLLM reservation that causes it.
    assert (
        "memory-fit" in rules["shared-nvidia-a100-sxm4-80gb"] and "greedy-allocator" not in rules["shared-nvidia-a100-sxm4-80gb"]
    )


def _policy_report_schema() -> dict[str, Any]:
    crd = yaml.safe_load((DATA / "wgpolicyk8s.io_policyreports.yaml").read_text(encoding="utf-8"))
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha2")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def test_policy_reports_validate_against_the_crd_schema(tmp_path: Path) -> None:
    written = tmp_path / "reports.json"
    run = run_cli("audit", "--cluster", str(_overcommitted_cluster(tmp_path)), "--policy-report", str(written))
    assert run.code == 1
    reports = json.loads(written.read_text(encoding="utf-8"))
    assert reports["kind"] == "List" and len(reports["items"]) == 2
    schema = _policy_report_schema()
    for item in reports["items"]:
        jsonschema.validate(item, schema)
        assert item["apiVersion"] == "wgpolicyk8s.io/v1alpha2" and item["kind"] == "PolicyReport"
    prod = next(i for i in reports["items"] if i["metadata"]["namespace"] == "prod")
    fit = [r for r in prod["results"] if r["rule"] == "memory-fit"]
    assert len(fit) == 1 and fit[0]["result"] == "fail" and fit[0]["severity"] == "high"
    assert {r["name"] for r in fit[0]["resources"]} == {"chat-llm", "embeddings"}
    assert prod["summary"]["fail"] == sum(1 for r in prod["results"] if r["result"] == "fail") >= 1
    research = next(i for i in reports["items"] if i["metadata"]["namespace"] == "research")
    assert [(r["result"], r["resources"][0]["name"]) for r in research["results"]] == [("pass", "trainer")]


def test_the_schema_refuses_what_it_should() -> None:
    """The fixture schema is strict enough to catch a wrong result value."""
    schema = _policy_report_schema()
    bad = {
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": "PolicyReport",
        "metadata": {},
        "results": [{"policy": "p", "result": "failed"}],
    }
    try:
        jsonschema.validate(bad, schema)
    except jsonschema.ValidationError as error:
        assert "failed" in error.message
    else:
        raise AssertionError("a result of 'failed' passed the PolicyReport schema")

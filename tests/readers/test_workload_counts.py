"""A Deployment's, StatefulSet's or Job's count that is not a whole number ≥ 0 is bad input
naming the file, the field's own line and its path (exit 2), never the document's first line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

WORKLOAD = """\
# a comment, so the document starts before the object
apiVersion: {api}
kind: {kind}
metadata: {{name: svc}}
spec:
  {field}: {value}
  template:
    spec:
      containers:
        - name: c
          image: server:1
          resources: {{limits: {{nvidia.com/gpu: 1}}}}
"""


@pytest.mark.parametrize(
    ("api", "kind", "field"),
    [("apps/v1", "Deployment", "replicas"), ("apps/v1", "StatefulSet", "replicas"), ("batch/v1", "Job", "parallelism")],
)
@pytest.mark.parametrize("value", ['"2"', "-1", "true", "2.5"])
def test_a_malformed_count_names_its_own_line(tmp_path: Path, api: str, kind: str, field: str, value: str) -> None:
    path = tmp_path / "workload.yaml"
    path.write_text(WORKLOAD.format(api=api, kind=kind, field=field, value=value), encoding="utf-8")
    run = run_cli("lint", str(path))
    assert run.code == 2, run.stdout + run.stderr
    assert f"{path}:6" in run.stdout + run.stderr  # the line of `{field}:`, not the document's
    assert f"spec.{field}: expected a whole number ≥ 0" in run.stdout + run.stderr


PARKED = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, annotations: {{gpuadmit.dev/gpu-gb: "70"}}}}
spec:
  replicas: {replicas}
  template:
    spec:
      nodeSelector: {{nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB-SHARED}}
      containers:
        - name: c
          image: server:1
          resources: {{limits: {{nvidia.com/gpu: 1}}}}
"""


def test_a_workload_scaled_to_zero_holds_no_gpu_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text(PARKED.format(name="parked", replicas=0) + "---\n" + PARKED.format(name="live", replicas=1), encoding="utf-8")
    run = run_cli("lint", "--format", "json", str(path))
    findings = json.loads(run.stdout)["findings"]
    assert not [f for f in findings if f["rule"] == "memory-fit"], findings  # 70.5 GiB of 76 usable: the live one alone
    (note,) = [f for f in findings if f["severity"] == "info" and "0 replicas" in f["message"]]
    assert note["message"].startswith("parked:")
    path.write_text(PARKED.format(name="parked", replicas=1) + "---\n" + PARKED.format(name="live", replicas=1), encoding="utf-8")
    assert run_cli("lint", str(path)).code == 1  # both running: 141 GiB, they do not fit

"""A Deployment's, StatefulSet's or Job's count that is not a whole number ≥ 0 is bad input
naming the file, the field's own line and its path (exit 2), never the document's first line."""

from __future__ import annotations

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

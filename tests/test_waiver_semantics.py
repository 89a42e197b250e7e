"""Waivers have one meaning everywhere (policy.waivers): in force through their expiry
date, exact in what they waive, and a waiver that waives nothing points at the key at
fault, known from the waiver itself, never guessed from a message."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from policy import waivers
from policy.api import Linter
from policy.plan import Waiver

TODAY = dt.date.today()
DAY = dt.timedelta(days=1)

RULE = """\
id: {id}
title: A rule of one's own
severity: warning
scope: model
description: Written by a user.
remediation: "look at {{model.name}}"
params: {{limit: 2}}
validations:
  - expression: model.instances <= params.limit
    message: "{{model.name}}: {{model.instances}} instances"
    field: instances
"""


def test_a_waiver_is_in_force_through_its_expiry_date() -> None:
    waiver = Waiver(rule="bulk-capped", model="emb", reason="nightly", expires=TODAY)
    assert not waivers.expired(waiver, TODAY) and waivers.days_expired(waiver, TODAY) == 0
    assert waivers.expired(waiver, TODAY + DAY) and waivers.days_expired(waiver, TODAY + 3 * DAY) == 3
    assert not waivers.expired(Waiver(rule="bulk-capped", model="emb", reason="always"), TODAY + 1000 * DAY)


def test_a_waiver_waives_its_rule_and_subject_exactly() -> None:
    for_model = Waiver(rule="bulk-capped", model="emb", reason="r")
    assert waivers.waives(for_model, "bulk-capped", "emb", "gpu0")
    assert not waivers.waives(for_model, "bulk-capped", "emb-2", "gpu0")
    assert not waivers.waives(for_model, "bulk-capped-x", "emb", "gpu0")
    for_gpu = Waiver(rule="bulk-capped", gpu="gpu0", reason="r")  # covers the models on it
    assert waivers.waives(for_gpu, "bulk-capped", "emb", "gpu0")
    assert not waivers.waives(for_gpu, "bulk-capped", "emb", "gpu1")
    both = Waiver(rule="bulk-capped", model="emb", gpu="gpu0", reason="r")
    assert waivers.waives(both, "bulk-capped", "emb", "gpu0") and not waivers.waives(both, "bulk-capped", "emb", "gpu1")


@pytest.mark.parametrize("text", ["20270131", "2027-1-31", "2027-02-30", "31.01.2027", "2027-01-31T00:00", ""])
def test_an_expiry_date_is_written_one_way(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        waivers.parse_expires(text)
    assert waivers.parse_expires(" 2027-01-31 ") == dt.date(2027, 1, 31)


SEED_WITH_WAIVERS = """\
gpus: [{{id: gpu0, memory_gb: 80}}]
models:
  - {{name: chat, gpu: gpu0, gpu_gb: 40, latency_critical: true, priority: 1, sla_ms: 200, service_ms: 50,
     rate_limit: {{max_concurrency: 8, max_queue: 16, queue_timeout_ms: 100, timeout_action: reject}}}}
  - {{name: embeddings, gpu: gpu0, gpu_gb: 2, priority: 2}}
  - {{name: reranker, gpu: gpu0, gpu_gb: 2, priority: 2}}
waivers:
  - {{rule: bulk-capped, model: embeddings, reason: nightly, expires: {today}}}
  - {{rule: bulk-capped, model: reranker, reason: nightly, expires: {yesterday}}}
"""


def test_every_entry_point_agrees_on_the_expiry_day(tmp_path: Path) -> None:
    """Waived, `waiver-expired` and `waiver-unmatched` read the same expiry: a waiver
    expiring today still waives; one that expired yesterday waives nothing, is an error,
    and is not also said to match nothing."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(SEED_WITH_WAIVERS.format(today=TODAY.isoformat(), yesterday=(TODAY - DAY).isoformat()))
    report = Linter().lint_paths([plan])
    capped = {f.model: f.waived for f in report.findings if f.rule == "bulk-capped"}
    assert capped == {"embeddings": True, "reranker": False}
    assert [(f.rule, f.line) for f in report.findings if f.rule.startswith("waiver-")] == [("waiver-expired", 9)]


@pytest.mark.parametrize("rule_id", ["model-instances", "gpu-instances", "rule-of-thumb"])
def test_a_waiver_whose_finding_is_gone_points_at_the_waiver_whatever_its_rule_is_called(tmp_path: Path, rule_id: str) -> None:
    """A rule whose id begins like a waiver key (`model-...`) once sent the finding to
    that key's line, read off the message; it is about the waiver as a whole."""
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / f"{rule_id}.yaml").write_text(RULE.format(id=rule_id))
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "gpus: [{id: gpu0, memory_gb: 80}]\n"
        "models: [{name: emb, gpu: gpu0, gpu_gb: 1, instances: 1}]\n"
        "waivers:\n"
        f"  - rule: {rule_id}\n"
        "    reason: a finding long gone\n"
        "    gpu: gpu0\n"
        "    model: emb\n"
    )
    report = Linter(rule_dirs=[folder]).lint_paths([plan])
    (unmatched,) = [f for f in report.findings if f.rule == "waiver-unmatched"]
    assert unmatched.message == f"waiver of {rule_id} for emb: {rule_id} finds nothing to waive here"
    assert (unmatched.line, unmatched.column) == (4, 5)


@pytest.mark.parametrize(
    ("waiver", "line", "message"),
    [
        ("rule: bulk-caped\n    model: embeddings", 7, "rule 'bulk-caped' does not exist; did you mean 'bulk-capped'?"),
        ("rule: bulk-capped\n    model: embedings", 8, "model 'embedings' is not in this plan; did you mean 'embeddings'?"),
        ("rule: bulk-capped\n    gpu: gpu9", 8, "GPU 'gpu9' is not in this plan"),
    ],
    ids=["rule", "model", "gpu"],
)
def test_a_misspelt_waiver_points_at_the_misspelt_key(tmp_path: Path, waiver: str, line: int, message: str) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "gpus: [{id: gpu0, memory_gb: 80}]\n"
        "models:\n"
        "  - {name: chat, gpu: gpu0, gpu_gb: 40, latency_critical: true, sla_ms: 200}\n"
        "  - {name: embeddings, gpu: gpu0, gpu_gb: 2}\n"
        "waivers:\n"
        "  - reason: nightly\n"
        f"    {waiver}\n"
    )
    report = Linter().lint_paths([plan])
    (unmatched,) = [f for f in report.findings if f.rule == "waiver-unmatched"]
    assert message in unmatched.message
    assert unmatched.line == line


def test_an_annotation_expiry_not_written_as_a_date_is_bad_input(tmp_path: Path) -> None:
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: emb\n  annotations:\n"
        '    gpuadmit.dev/waive: "bulk-capped=nightly; expires=20270131"\n'
        "spec:\n  template:\n    spec:\n      containers:\n"
        "        - name: c\n          image: x\n          resources: {limits: {nvidia.com/gpu: 1}}\n"
    )
    report = Linter().lint_paths([manifest])
    assert report.exit_code() == 2
    (schema,) = [f for f in report.findings if f.rule == "schema"]
    assert "expires must be a date YYYY-MM-DD, got '20270131'" in schema.message and schema.line == 6

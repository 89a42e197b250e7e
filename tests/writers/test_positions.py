"""Every finding from a YAML or JSON plan names its file and the line and column of the key it is about."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from writer_helpers import at_root  # noqa: F401  (autouse: run from the repository root)
from writer_helpers import ROOT, SEED, SEED_FINDINGS, report_of

SAMPLES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "samples").glob("*.yaml"))


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_sample_finding_has_file_line_and_column(sample: str) -> None:
    for finding in report_of(sample).findings:
        assert finding.file == sample, finding
        assert finding.line and finding.line >= 1, finding
        assert finding.column and finding.column >= 1, finding


def test_json_plan_findings_point_at_the_model_lines(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / SEED).read_text(encoding="utf-8"))
    plan = tmp_path / "seed.json"
    plan.write_text(json.dumps(data, indent=2), encoding="utf-8")
    text = plan.read_text(encoding="utf-8").splitlines()
    report = report_of(plan)
    assert {(f.rule, f.model) for f in report.findings} == SEED_FINDINGS
    for finding in report.findings:
        assert finding.file == str(plan) and finding.line and finding.column
        key_line = text[finding.line - 1]
        assert key_line[finding.column - 1] == '"', key_line  # a key starts there
        model_block = "\n".join(text[finding.line - 6 : finding.line + 1])
        assert f'"name": "{finding.model}"' in model_block


def test_compact_json_findings_carry_columns(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / SEED).read_text(encoding="utf-8"))
    plan = tmp_path / "seed.json"
    plan.write_text(json.dumps(data), encoding="utf-8")
    text = plan.read_text(encoding="utf-8")
    for finding in report_of(plan).findings:
        assert finding.line == 1
        assert finding.column is not None
        model_start = text.rindex("{", 0, finding.column)
        assert text[model_start:].startswith(f'{{"name": "{finding.model}"')


def test_duplicate_json_key_is_a_schema_error_on_its_line(tmp_path: Path) -> None:
    plan = tmp_path / "dup.json"
    plan.write_text('{\n  "GPU_GB": 80,\n  "models": [],\n  "GPU_GB": 40\n}\n', encoding="utf-8")
    [finding] = report_of(plan).findings
    assert (finding.rule, finding.line, finding.column) == ("schema", 4, 3)
    assert "duplicate key (first defined on line 2)" in finding.message


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    plan = tmp_path / "bad.json"
    plan.write_text('{\n  "GPU_GB": 80,\n  "models": [1,]\n}\n', encoding="utf-8")
    [finding] = report_of(plan).findings
    assert (finding.rule, finding.line, finding.column) == ("schema", 3, 16)  # the `]`
    assert finding.message == "invalid JSON: Expecting value"


def test_json_values_match_the_standard_parser(tmp_path: Path) -> None:
    from policy.yamlio import load_documents

    text = '{"a": [1, 2.5e3, -0, true, false, null, "\\u00e9\\n\\"", {}], "b": {"c": []}, "": 1}'
    [doc] = load_documents(text, "x.json")
    assert doc.data == json.loads(text)
    assert doc.data.key_lines == {key: (1, text.index(f'"{key}": ') + 1) for key in ("a", "b", "")}
    assert doc.data["a"].item_lines[1] == (1, text.index("2.5e3") + 1)

"""SARIF: valid 2.1.0 for every sample, rules described, results located, fingerprints
stable across edits, waivers as suppressions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from policy.writers import render
from writer_helpers import at_root  # noqa: F401  (autouse: run from the repository root)
from writer_helpers import DATA, NEXT_YEAR, ROOT, SEED, SEED_FINDINGS, SEED_LINES, report_of, waived_seed

SAMPLES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "samples").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    return jsonschema.Draft4Validator(schema)


def sarif_of(*paths: str | Path, **kwargs: Any) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(render(report_of(*paths, **kwargs), "sarif"))
    return log


@pytest.mark.parametrize("sample", [*SAMPLES, "samples"])
def test_every_sample_is_valid_sarif(sample: str, validator: jsonschema.Draft4Validator) -> None:
    log = sarif_of(sample)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, errors[0].message
    assert log["version"] == "2.1.0"


def test_unreadable_input_is_valid_sarif_with_a_schema_result(tmp_path: Path, validator: jsonschema.Draft4Validator) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("models: [\n", encoding="utf-8")
    log = sarif_of(bad)
    validator.validate(log)
    [result] = log["runs"][0]["results"]
    assert result["ruleId"] == "schema"
    assert result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 2


def test_seed_demo_results_point_at_each_model_line_and_column() -> None:
    run = sarif_of(SEED)["runs"][0]
    results = run["results"]
    assert len(results) == 6
    seen = set()
    for result in results:
        model = result["locations"][0]["logicalLocations"][0]["name"]
        seen.add((result["ruleId"], model))
        physical = result["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "samples/seed-demo.yaml"
        assert physical["region"]["startLine"] == SEED_LINES[model]
        assert physical["region"]["startColumn"] >= 1
        assert result["level"] == "error"
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    assert seen == SEED_FINDINGS


def test_driver_describes_every_rule_with_help_and_level() -> None:
    rules = sarif_of(SEED)["runs"][0]["tool"]["driver"]["rules"]
    ids = [rule["id"] for rule in rules]
    assert {"bulk-capped", "latency-critical-priority", "memory-fit", "waiver-expired", "schema"} <= set(ids)
    assert len(ids) == len(set(ids))
    bulk = rules[ids.index("bulk-capped")]
    assert bulk["name"] == "BulkCapped"
    assert bulk["shortDescription"]["text"] == "Bulk models beside latency-critical ones are capped"
    assert "burst of bulk work" in bulk["fullDescription"]["text"]
    assert "Fix: cap {model.name}: `caps: {max_batch_size: ...}`" in bulk["help"]["text"]
    assert bulk["helpUri"].endswith("docs/rules.md#bulk-capped")
    assert bulk["defaultConfiguration"] == {"level": "error"}
    headroom = rules[ids.index("memory-headroom")]
    assert headroom["defaultConfiguration"] == {"level": "warning"}


def _fingerprints(log: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (r["ruleId"], r["properties"]["subject"]): r["partialFingerprints"]["gpuadmitSubject/v1"]
        for r in log["runs"][0]["results"]
    }


def test_fingerprints_survive_moved_lines_and_changed_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    seed = (ROOT / SEED).read_text(encoding="utf-8")
    Path("plan.yaml").write_text(seed, encoding="utf-8")
    before = _fingerprints(sarif_of("plan.yaml"))
    edited = "# reviewed\n# twice\n" + seed.replace("gpu_gb: 42", "gpu_gb: 40")
    Path("plan.yaml").write_text(edited, encoding="utf-8")
    after_log = sarif_of("plan.yaml")
    assert _fingerprints(after_log) == before
    assert len(set(before.values())) == 6
    lines = {r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in after_log["runs"][0]["results"]}
    assert lines == {line + 2 for line in SEED_LINES.values()}


def test_fingerprints_differ_between_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    seed = (ROOT / SEED).read_text(encoding="utf-8")
    Path("a.yaml").write_text(seed, encoding="utf-8")
    Path("b.yaml").write_text(seed, encoding="utf-8")
    results = sarif_of("a.yaml", "b.yaml")["runs"][0]["results"]
    assert len({r["partialFingerprints"]["gpuadmitSubject/v1"] for r in results}) == 12


def test_plan_waiver_is_an_in_source_suppression(tmp_path: Path, validator: jsonschema.Draft4Validator) -> None:
    log = sarif_of(waived_seed(tmp_path))
    validator.validate(log)
    [result] = log["runs"][0]["results"]
    assert result["ruleId"] == "bulk-capped"
    assert result["suppressions"] == [{"kind": "inSource", "status": "accepted", "justification": "runs only at night"}]


def test_config_waiver_is_an_external_suppression(validator: jsonschema.Draft4Validator) -> None:
    waiver = {"rule": "bulk-capped", "model": "reranker", "reason": "batch window only", "expires": NEXT_YEAR}
    log = sarif_of(SEED, waivers=[waiver])
    validator.validate(log)
    suppressed = [r for r in log["runs"][0]["results"] if "suppressions" in r]
    assert [(r["ruleId"], r["properties"]["subject"]) for r in suppressed] == [("bulk-capped", "reranker")]
    assert suppressed[0]["suppressions"] == [{"kind": "external", "status": "accepted", "justification": "batch window only"}]
    assert len(log["runs"][0]["results"]) == 6


def test_absolute_paths_become_relative_uris_with_forward_slashes() -> None:
    log = sarif_of(ROOT / SEED)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]}
    assert uris == {"samples/seed-demo.yaml"}

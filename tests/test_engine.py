"""The rule engine: user rule folders, broken rules caught at load, waivers, fail closed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLES, run_cli
from policy.api import Linter
from policy.engine import RuleSet
from policy.errors import RuleError
from policy.readers import read_paths
from policy.rules import RuleOverride

GOOD_RULE = """\
id: max-instances
title: No model runs more than a few instances per GPU
severity: warning
scope: model
description: Many instances of one model multiply its memory and contexts.
remediation: "lower instances of {model.name} to {params.limit:g} or fewer"
params:
  limit: 2
validations:
  - expression: model.instances <= params.limit
    message: "{model.name}: {model.instances} instances > {params.limit:g}"
    field: instances
"""


def _rule_dir(tmp_path: Path, text: str, name: str = "max-instances.yaml") -> Path:
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


def test_user_rule_folder_adds_a_rule_without_python(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("gpus: [{id: gpu0, memory_gb: 80}]\nmodels:\n  - name: emb\n    gpu: gpu0\n    gpu_gb: 1\n    instances: 4\n")
    report = Linter(rule_dirs=[_rule_dir(tmp_path, GOOD_RULE)]).lint_paths([plan])
    (finding,) = [f for f in report.findings if f.rule == "max-instances"]
    assert finding.severity == "warning"
    assert finding.message == "emb: 4 instances > 2"
    assert finding.line == 6  # the `instances` key
    assert finding.fix == "lower instances of emb to 2 or fewer"


def test_params_and_severity_are_overridden_by_config(tmp_path: Path) -> None:
    folder = _rule_dir(tmp_path, GOOD_RULE)
    rules = RuleSet.load([folder], {"max-instances": RuleOverride(severity="error", params={"limit": 8})})
    rule = rules.by_id["max-instances"]
    assert rule.spec.severity == "error"
    assert rule.params["limit"] == 8.0


@pytest.mark.parametrize(
    ("mutation", "message", "field"),
    [
        (
            ("expression: model.instances <= params.limit", "expression: model.instances <="),
            "does not compile",
            "validations[0].expression",
        ),
        (
            ("expression: model.instances <= params.limit", "expression: model.instancez <= params.limit"),
            "model has no fact 'instancez' (docs/facts.md); did you mean 'instances'?",
            "validations[0].expression",
        ),
        (
            ("expression: model.instances <= params.limit", 'expression: model.instances > "2"'),
            "no matching overload for '_>_' applied to '(int, string)'",
            "validations[0].expression",
        ),
        (
            ("expression: model.instances <= params.limit", "expression: model.gpu_gb + model.instances < 8.0"),
            "applied to '(double, int)'",
            "validations[0].expression",
        ),
        (
            ("expression: model.instances <= params.limit", "expression: model.instances <= params.limitt"),
            "rule has no parameter 'limitt'; did you mean 'limit'?",
            "validations[0].expression",
        ),
        (  # a string that a text search takes for one running on over `params.limitt`
            (
                "expression: model.instances <= params.limit",
                "expression: \"'''it's''' != model.name && model.instances <= params.limitt && model.name != 'x'\"",
            ),
            "rule has no parameter 'limitt'; did you mean 'limit'?",
            "validations[0].expression",
        ),
        (
            ("{model.instances} instances", "{model.instancez} instances"),
            "message placeholder {model.instancez} is not a known value; did you mean 'instances'?",
            "validations[0].message",
        ),
        (
            ("{model.instances} instances", "{model.name:.1f} instances"),
            "message placeholder {model.name}: format '.1f' does not apply",
            "validations[0].message",
        ),
        (
            ("{params.limit:g} or fewer", "{params.limt:g} or fewer"),
            "placeholder {params.limt} is not a known value; did you mean 'limit'?",
            "remediation",
        ),
        (("severity: warning", "severity: fatal"), "'fatal' is not one of", "severity"),
        (("scope: model", "scope: model\nwhen: always"), "unknown key", None),
        (("id: max-instances", "id: other-id"), "differs from the file name", "id"),
        (
            ("expression: model.instances <= params.limit", "expression: double(model.instances)"),
            "must evaluate to a boolean, not DOUBLE",
            "validations[0].expression",
        ),
    ],
)
def test_broken_rule_fails_at_load_with_file_and_field(
    tmp_path: Path, mutation: tuple[str, str], message: str, field: str | None
) -> None:
    folder = _rule_dir(tmp_path, GOOD_RULE.replace(*mutation))
    with pytest.raises(RuleError) as caught:
        RuleSet.load([folder])
    error = caught.value
    assert error.file and error.file.endswith("max-instances.yaml")
    assert message in str(error)
    if field:
        assert error.field == field


def test_broken_rule_through_the_cli_is_exit_2_one_line(tmp_path: Path) -> None:
    folder = _rule_dir(tmp_path, GOOD_RULE.replace("severity: warning", "severity: loud"))
    run = run_cli("lint", "--rules", str(folder), str(SAMPLES / "seed-demo.yaml"))
    assert run.code == 2
    assert run.stderr.count("\n") == 1
    assert "max-instances.yaml:3:1: severity: 'loud' is not one of" in run.stderr


def test_stray_file_in_rule_folder_is_refused(tmp_path: Path) -> None:
    folder = _rule_dir(tmp_path, GOOD_RULE)
    (folder / "notes.txt").write_text("hello")
    with pytest.raises(RuleError, match="not a rule file"):
        RuleSet.load([folder])


def test_duplicate_rule_id_is_refused(tmp_path: Path) -> None:
    folder = _rule_dir(tmp_path, (ROOT / "rules" / "memory-fit.yaml").read_text(), name="memory-fit.yaml")
    with pytest.raises(RuleError, match="already defined"):
        RuleSet.load([folder])


def test_unknown_param_override_suggests_the_right_one() -> None:
    with pytest.raises(RuleError, match="did you mean 'warn_pct'"):
        RuleSet.load([], {"memory-headroom": RuleOverride(params={"warn_pc": 80})})


def test_rule_that_errors_on_a_plan_fails_closed(tmp_path: Path) -> None:
    # Division by zero only happens on this plan: the rule loads.
    rule = GOOD_RULE.replace("model.instances <= params.limit", "model.instances == 0 || 10 / (model.instances - 4) >= 0")
    plan = tmp_path / "plan.yaml"
    plan.write_text("gpus: [{id: gpu0, memory_gb: 80}]\nmodels: [{name: emb, gpu: gpu0, gpu_gb: 1, instances: 4}]\n")
    report = Linter(rule_dirs=[_rule_dir(tmp_path, rule)]).lint_paths([plan])
    (finding,) = [f for f in report.findings if f.rule == "max-instances"]
    assert finding.severity == "error"
    assert "could not be evaluated" in finding.message
    assert report.exit_code() == 1


def test_expired_waiver_does_not_waive_and_is_an_error(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        (SAMPLES / "seed-demo.yaml").read_text() + "waivers:\n"
        "  - {rule: bulk-capped, model: embeddings, reason: nightly only, expires: 2020-01-01}\n"
        "  - {rule: bulk-capped, model: reranker, reason: nightly only}\n"
    )
    report = Linter().lint_paths([plan])
    by_model = {f.model: f for f in report.findings if f.rule == "bulk-capped"}
    assert not by_model["embeddings"].waived
    assert by_model["reranker"].waived and by_model["reranker"].waiver_reason == "nightly only"
    (expired,) = [f for f in report.findings if f.rule == "waiver-expired"]
    assert "expired on 2020-01-01" in expired.message and expired.line == 9


def test_waiver_needs_a_reason_and_a_subject(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        (SAMPLES / "seed-demo.yaml").read_text() + "waivers:\n  - {rule: bulk-capped, model: embeddings, reason: ''}\n"
    )
    report = Linter().lint_paths([plan])
    assert report.exit_code() == 2
    assert "waivers[0].reason" in report.findings[0].message


def test_rule_cache_gives_the_same_verdict_and_notices_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUADMIT_CACHE_DIR", str(tmp_path / "cache"))
    folder = _rule_dir(tmp_path, GOOD_RULE)
    first = RuleSet.load([folder])
    assert list((tmp_path / "cache").glob("rules-*.json"))
    second = RuleSet.load([folder])  # from the cache
    assert [r.id for r in first.rules] == [r.id for r in second.rules]
    plan = SAMPLES / "seed-demo.yaml"
    source = read_paths([plan]).sources[0]
    assert all(rule.fast is not None for rule in second.active)  # translations come back from the cache too
    assert [f.message for f in first.judge(source).findings] == [f.message for f in second.judge(source).findings]
    # A broken edit is not hidden by the cached good version.
    (folder / "max-instances.yaml").write_text(GOOD_RULE.replace("severity: warning", "severity: loud"))
    with pytest.raises(RuleError):
        RuleSet.load([folder])


def test_builtin_rules_are_found_in_an_installed_layout(tmp_path: Path) -> None:
    from policy import rules

    assert (rules.builtin_rules_dir() / "memory-fit.yaml").is_file()
    copied = shutil.copytree(ROOT / "rules", tmp_path / "rules")
    assert len(list(copied.glob("*.yaml"))) == len(list((ROOT / "rules").glob("*.yaml")))


def _large_plan(n_models: int) -> str:
    """More subjects than one evaluation chunk, with every kind of risk somewhere."""
    gpus = "".join(
        f"  - {{id: gpu{g}, product: H100, sharing: {'mps' if g % 3 else 'time-slicing'}}}\n" for g in range(n_models // 4)
    )
    models = []
    for m in range(n_models):
        critical = m % 4 == 0
        model = (
            f"  - {{name: m{m}, framework: {('vllm', 'pytorch', 'onnxruntime')[m % 3]}, gpu: gpu{m // 4}, gpu_gb: {m % 17 + 1}"
        )
        if critical:
            model += ", latency_critical: true, sla_ms: 200" + (", priority: 1" if m % 8 else "")
            model += ", rate_limit: {max_concurrency: 4, max_queue: 8, queue_timeout_ms: 300}" if m % 12 else ""
        elif m % 5:
            model += ", caps: {max_batch_size: 8, compute_pct: 20}, priority: 3"
        models.append(model + "}\n")
    return "gpus:\n" + gpus + "models:\n" + "".join(models)


def _verdict(linter: Linter, path: Path) -> list[tuple[str, str | None, str | None, str]]:
    return [(f.rule, f.model, f.gpu, f.message) for f in linter.lint_paths([path]).findings]


def test_translated_rules_give_the_reference_verdict_on_a_plan_of_many_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policy import ruleeval

    plan = tmp_path / "large.yaml"
    plan.write_text(_large_plan(3 * ruleeval.CHUNK + 5))
    linter = Linter()
    assert all(rule.fast is not None for rule in linter.rules.active)
    with monkeypatch.context() as patch:  # the translated path alone: cel-cpp is never asked
        patch.setattr(ruleeval, "_activations", lambda chunks, keys: pytest.fail("fell back to cel-cpp"))
        translated = _verdict(linter, plan)
    for rule in linter.rules.active:
        rule.fast = None
    reference = _verdict(linter, plan)
    assert translated == reference
    assert {f[0] for f in reference} >= {"latency-critical-priority", "latency-critical-queue", "memory-fit", "bulk-capped"}


def test_a_rule_outside_the_translated_subset_runs_on_cel_cpp(tmp_path: Path) -> None:
    from policy import ruleeval

    rule = GOOD_RULE.replace("model.instances <= params.limit", "'[model.instances].all(n, n <= params.limit)'")
    plan = tmp_path / "plan.yaml"
    plan.write_text("gpus: [{id: gpu0, memory_gb: 80}]\nmodels: [{name: emb, gpu: gpu0, gpu_gb: 1, instances: 4}]\n")
    linter = Linter(rule_dirs=[_rule_dir(tmp_path, rule)])
    assert linter.rules.untranslated == ["max-instances"]
    before = sum(ruleeval.FALLBACKS.values())
    (finding,) = [f for f in linter.lint_paths([plan]).findings if f.rule == "max-instances"]
    assert finding.message == "emb: 4 instances > 2"
    assert sum(ruleeval.FALLBACKS.values()) == before  # refused at load: not a fallback


def test_a_translated_rule_handing_a_plan_over_is_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from policy import ruleeval

    plan = tmp_path / "plan.yaml"
    plan.write_text("gpus: [{id: gpu0, memory_gb: 80}]\nmodels: [{name: emb, gpu: gpu0, gpu_gb: 1, instances: 4}]\n")
    linter = Linter(rule_dirs=[_rule_dir(tmp_path, GOOD_RULE)])
    rule = linter.rules.by_id["max-instances"]

    def refuses(*chunk: object) -> object:
        raise ruleeval.RuleError("not vouched for")

    monkeypatch.setattr(rule, "fast", refuses)
    before = ruleeval.FALLBACKS["max-instances"]
    (finding,) = [f for f in linter.lint_paths([plan]).findings if f.rule == "max-instances"]
    assert finding.message == "emb: 4 instances > 2"  # cel-cpp's answer
    assert ruleeval.FALLBACKS["max-instances"] == before + 1

"""The plan model: the one shape every reader produces, its validation and its schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from policy.plan import (
    MAX_MODELS_PER_GPU,
    Gpu,
    Model,
    ServingPlan,
    Waiver,
    json_schema,
)


def _error(data: dict[str, Any], model: type[Any] = ServingPlan) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    error = caught.value.errors(include_url=False)[0]
    return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"


def test_defaults_are_one_time_sliced_gpu_and_one_instance() -> None:
    plan = ServingPlan.model_validate({"gpus": [{"id": "gpu0"}], "models": [{"name": "m", "gpu": "gpu0"}]})
    assert plan.apiVersion == "gpuadmit.dev/v1alpha1" and plan.kind == "ServingPlan"
    assert plan.metadata.name == "plan"
    assert plan.gpus[0].sharing == "time-slicing"
    model = plan.models[0]
    assert (model.instances, model.framework, model.latency_critical, model.gpu_gb) == (1, "unknown", False, None)


def test_seed_form_is_one_implicit_gpu_of_that_size() -> None:
    for key in ("gpu_gb", "GPU_GB"):
        plan = ServingPlan.model_validate({key: 80, "models": [{"name": "chat", "gpu_gb": 42}, {"name": "tp", "gpus": ["gpu0"]}]})
        assert [(g.id, g.memory_gb) for g in plan.gpus] == [("gpu0", 80)]
        assert [m.placed_on for m in plan.models] == [["gpu0"], ["gpu0"]]


def test_seed_form_and_gpus_together_are_refused() -> None:
    assert "give either a top-level `gpu_gb` (one implicit GPU) or `gpus`, not both" in _error(
        {"gpu_gb": 80, "gpus": [{"id": "gpu0"}]}
    )


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("TRT-LLM", "tensorrt_llm"),
        (" tensorrtllm ", "tensorrt_llm"),
        ("Torch", "pytorch"),
        ("onnx", "onnxruntime"),
        ("vllm", "vllm"),
    ],
)
def test_framework_spellings_become_one_name(spelling: str, canonical: str) -> None:
    assert Model(name="m", framework=spelling).framework == canonical


def test_a_model_is_placed_one_way() -> None:
    assert Model(name="m", gpus=["gpu0", "gpu1"]).placed_on == ["gpu0", "gpu1"]
    assert Model(name="m").placed_on == []
    assert "give either `gpu` or `gpus`, not both" in _error({"name": "m", "gpu": "gpu0", "gpus": ["gpu1"]}, Model)


def test_suggest_bounds_must_be_in_order() -> None:
    assert "instances_min 4 is above instances_max 2" in _error({"name": "m", "instances_min": 4, "instances_max": 2}, Model)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "m", "gpu_gb": -4}, "gpu_gb: Input should be greater than or equal to 0"),
        ({"name": "m", "gpu_gb": 5000}, "gpu_gb: Input should be less than or equal to 4096"),
        ({"name": "m", "instances": 2000}, "instances: Input should be less than or equal to 1024"),
        ({"name": "m", "memory_fraction": 1.5}, "memory_fraction: Input should be less than or equal to 1"),
        ({"name": "m", "sla_ms": 0}, "sla_ms: Input should be greater than 0"),
        ({"name": "m", "gpu_gb": float("nan")}, "gpu_gb: Input should be a finite number"),
        ({"name": "m", "rate_limit": {"max_queue": -1}}, "rate_limit.max_queue: Input should be greater than or equal to 0"),
        (
            {"name": "m", "rate_limit": {"timeout_action": "wait"}},
            "rate_limit.timeout_action: Input should be 'reject' or 'delay'",
        ),
        ({"name": "m", "caps": {"compute_pct": 120}}, "caps.compute_pct: Input should be less than or equal to 100"),
        ({"name": "m", "caps": {"max_batch": 8}}, "caps.max_batch: Extra inputs are not permitted"),
        ({"name": "m", "gpu_gbb": 4}, "gpu_gbb: Extra inputs are not permitted"),
        ({"name": ""}, "name: String should have at least 1 character"),
    ],
)
def test_absurd_or_unknown_model_fields_are_refused(data: dict[str, Any], message: str) -> None:
    assert _error(data, Model) == message


def test_settings_blocks_stay_plain_dicts() -> None:
    model = Model(name="m", rate_limit={"max_concurrency": 4, "timeout_action": "reject"}, caps={"max_batch_size": 8})
    assert model.rate_limit == {"max_concurrency": 4, "timeout_action": "reject"}
    assert model.caps == {"max_batch_size": 8}


@pytest.mark.parametrize("profile", ["3g.40gb", "1g.10gb+me", "1g.24gb+me.all", "7g.141gb", "1g.24gb+gfx"])
def test_mig_profiles_as_nvidia_writes_them_are_accepted(profile: str) -> None:
    assert Gpu(id="gpu0", sharing="mig", mig=[profile]).mig == [profile]


@pytest.mark.parametrize("profile", ["3g40gb", "0g.10gb", "3g.0gb", "3g.9999gb", "100g.10gb", "3g.40gb+xx", "3g.40GB"])
def test_strings_that_are_not_mig_profiles_are_refused(profile: str) -> None:
    assert "is not a MIG profile such as 3g.40gb" in _error({"id": "gpu0", "mig": [profile]}, Gpu)


def test_a_gpu_holds_at_most_seven_mig_slices() -> None:
    assert _error({"id": "gpu0", "mig": ["1g.10gb"] * 8}, Gpu) == "mig: List should have at most 7 items after validation, not 8"


def test_names_and_gpu_ids_are_unique() -> None:
    assert "GPU id 'gpu0' is used twice" in _error({"gpus": [{"id": "gpu0"}, {"id": "gpu0"}]})
    assert "model name 'm' is used twice" in _error({"models": [{"name": "m"}, {"name": "m"}]})


def test_names_with_a_nul_character_are_refused() -> None:
    assert "'m\\x00x' holds a NUL character" in _error({"models": [{"name": "m\x00x"}]})


def test_too_many_models_on_one_gpu_are_refused() -> None:
    models = [{"name": f"m{n}", "gpu": "gpu0"} for n in range(MAX_MODELS_PER_GPU + 1)]
    assert f"{MAX_MODELS_PER_GPU + 1:,} models are placed on 'gpu0'" in _error({"gpus": [{"id": "gpu0"}], "models": models})


def test_a_waiver_names_a_subject_and_a_reason() -> None:
    assert "a waiver names the `model` or `gpu` it applies to" in _error({"rule": "bulk-capped", "reason": "night"}, Waiver)
    assert "a waiver needs a non-empty reason" in _error({"rule": "bulk-capped", "model": "m", "reason": "  "}, Waiver)
    waiver = Waiver.model_validate({"rule": "bulk-capped", "model": "m", "reason": "night", "expires": "2027-01-31"})
    assert str(waiver.expires) == "2027-01-31"


def test_the_json_schema_is_a_2020_12_schema_of_the_contract_fields() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "gpuadmit ServingPlan"
    model = schema["$defs"]["Model"]["properties"]
    for field in (
        "name",
        "framework",
        "gpu",
        "gpus",
        "instances",
        "gpu_gb",
        "latency_critical",
        "sla_ms",
        "priority",
        "rate_limit",
        "caps",
        "memory_fraction",
    ):
        assert field in model, field
    json.dumps(schema)  # plain JSON, for editors


def test_a_plan_dumps_and_validates_back_to_itself() -> None:
    plan = ServingPlan.model_validate(
        {
            "metadata": {"name": "node-a"},
            "gpus": [{"id": "gpu0", "product": "H100", "sharing": "mps"}],
            "models": [{"name": "chat", "framework": "vllm", "gpu": "gpu0", "gpu_gb": 40, "rate_limit": {"max_rps": 5}}],
            "waivers": [{"rule": "isolation", "gpu": "gpu0", "reason": "lab"}],
        }
    )
    assert ServingPlan.model_validate(plan.model_dump(exclude_unset=True)) == plan

"""Triton model repositories read as plans: mapping, positions, verdicts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import SAMPLES, run_cli
from reader_helpers import REALWORLD, judge, models, needs_realworld, only, rules

TRITON = REALWORLD / "triton"


# --- the sample repository --------------------------------------------------------------


def test_sample_repository_mixes_frameworks_on_one_server() -> None:
    read = models(SAMPLES / "triton")
    assert {n: m.framework for n, m in read.items()} == {
        "chat-llm": "tensorrt_llm",
        "embeddings": "onnxruntime",
        "guard": "onnxruntime",
        "reranker": "pytorch",
    }
    assert {m.server for m in read.values()} == {"triton-a"}
    chat = read["chat-llm"]
    assert (chat.gpu, chat.instances, chat.gpu_gb, chat.memory_fraction) == ("gpu0", 1, 16, 0.5)
    assert chat.latency_critical and chat.sla_ms == 300 and chat.priority == 1
    assert chat.rate_limit is not None and chat.rate_limit.get("enabled", True)
    assert (chat.rate_limit["max_queue"], chat.rate_limit["queue_timeout_ms"], chat.rate_limit["timeout_action"]) == (
        64,
        250,
        "reject",
    )
    assert read["reranker"].instances == 2 and read["reranker"].priority == 4
    assert read["embeddings"].memory_limit_gb == 2.0
    guard = read["guard"]
    assert guard.latency_critical and guard.sla_ms == 100 and guard.gpu_gb == 0.5


def test_sample_repository_with_fraction_set_is_accepted() -> None:
    report = judge(SAMPLES / "triton")
    assert [f for f in report.findings if f.counts] == []
    assert report.exit_code() == 0


def test_default_kv_cache_fraction_beside_a_reranker_is_rejected(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLES / "triton", repo)
    config = repo / "chat-llm" / "config.pbtxt"
    config.write_text(
        "".join(line for line in config.read_text().splitlines(keepends=True) if "kv_cache_free_gpu_mem_fraction" not in line)
    )
    report = judge(repo)
    (greedy,) = only(report, "memory-fit")
    assert (
        "chat-llm (tensorrt_llm kv_cache_free_gpu_mem_fraction 0.9 (default) of the 63.1 GiB free after its 16.0 GiB weights"
        in greedy.message
    )
    assert not only(report, "greedy-allocator")
    assert greedy.gpu == "gpu0"
    assert greedy.file == str(repo / "gpuadmit.yaml") and greedy.line == 8
    assert report.exit_code() == 1


def test_findings_about_a_model_point_into_its_config(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLES / "triton", repo)
    (repo / "gpuadmit.yaml").write_text((repo / "gpuadmit.yaml").read_text().replace("    sla_ms: 300\n", "    sla_ms: 100\n"))
    report = judge(repo)
    (finding,) = only(report, "latency-critical-queue")
    assert finding.message.startswith("chat-llm: queue timeout 250 ms leaves too little of its 100 ms SLA to compute")
    assert finding.file == str(repo / "chat-llm" / "config.pbtxt")
    assert finding.line == 9  # default_queue_policy


def test_a_plan_elsewhere_can_reference_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "models"
    shutil.copytree(SAMPLES / "triton", repo)
    (repo / "gpuadmit.yaml").unlink()
    plan = tmp_path / "node.yaml"
    plan.write_text(
        "kind: ServingPlan\nmetadata: {name: node}\ngpus: [{id: gpu0, product: H100}]\n"
        "triton: {repository: models, args: [--model-repository=/models]}\n"
        "models:\n  - {name: chat-llm, gpu_gb: 16, latency_critical: true, sla_ms: 300}\n"
        "  - {name: sidecar, framework: pytorch, gpu: gpu0, gpu_gb: 1, caps: {max_batch_size: 4}, server: other}\n"
    )
    report = judge(plan)
    # tritonserver runs without --rate-limit=execution_count: its rate limiters do not count.
    (off,) = [f for f in only(report, "latency-critical-rate-limit") if f.model == "chat-llm"]
    assert "switched off on the server" in off.message
    assert off.file == str(repo / "chat-llm" / "config.pbtxt")
    read = models(plan)
    assert set(read) == {"chat-llm", "embeddings", "guard", "reranker", "sidecar"}
    assert read["chat-llm"].priority is None and read["chat-llm"].rate_limit.get("enabled", True) is False  # type: ignore[union-attr]
    assert read["chat-llm"].server == "triton-models" and read["sidecar"].server == "other"


def test_missing_repository_is_unusable_input(tmp_path: Path) -> None:
    plan = tmp_path / "node.yaml"
    plan.write_text("kind: ServingPlan\nmetadata: {name: node}\ntriton: {repository: nowhere}\n")
    run = run_cli("lint", str(plan))
    assert run.code == 2
    assert "triton.repository: no model repository at" in run.stdout


# --- config parsing ---------------------------------------------------------------------


def test_typo_is_exit_2_with_tritons_field_name_and_line(tmp_path: Path) -> None:
    config = tmp_path / "repo" / "reranker" / "config.pbtxt"
    config.parent.mkdir(parents=True)
    config.write_text('name: "reranker"\nbackend: "pytorch"\ninstance_grop [ { count: 1 } ]\n')
    run = run_cli("lint", str(config))
    assert run.code == 2
    assert f"{config}:3" in run.stdout
    assert 'has no field named "instance_grop"' in run.stdout
    assert "did you mean 'instance_group'?" in run.stdout
    assert "Traceback" not in run.stderr


def _repo(tmp_path: Path, configs: dict[str, str], plan: str | None = None) -> Path:
    repo = tmp_path / "repo"
    for name, text in configs.items():
        (repo / name).mkdir(parents=True)
        (repo / name / "config.pbtxt").write_text(text)
    if plan is not None:
        (repo / "gpuadmit.yaml").write_text(plan)
    return repo


TWO_GPUS = "kind: ServingPlan\nmetadata: {name: node}\ngpus: [{id: a, product: L40S}, {id: b, product: L40S}]\n"


def test_instance_groups_place_count_on_each_listed_gpu(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        {
            "every": 'backend: "onnxruntime"\ninstance_group [ { count: 2, kind: KIND_GPU } ]\n',
            "second": 'backend: "pytorch"\ninstance_group [ { count: 3, kind: KIND_GPU, gpus: [ 1 ] } ]\n',
            "cpu": 'backend: "onnxruntime"\ninstance_group [ { count: 4, kind: KIND_CPU } ]\n',
            "trtllm": 'backend: "tensorrtllm"\ninstance_group [ { count: 1, kind: KIND_CPU } ]\n'
            'parameters: { key: "gpu_device_ids", value: { string_value: "1" } }\n',
            "trtllm_all": 'backend: "tensorrtllm"\ninstance_group [ { count: 1, kind: KIND_CPU } ]\n',
            "pipeline": 'platform: "ensemble"\n',
            "uneven": 'backend: "onnxruntime"\ninstance_group [ { count: 1, kind: KIND_GPU, gpus: [0] }, { count: 2, kind: KIND_GPU, gpus: [1] } ]\n',
        },
        plan=TWO_GPUS,
    )
    read = models(repo)
    placed = {n: (m.placed_on, m.instances) for n, m in read.items()}
    assert placed == {
        "every": (["a", "b"], 2),
        "second": (["b"], 3),
        "trtllm": (["b"], 1),
        "trtllm_all": (["a", "b"], 1),
        "uneven@a": (["a"], 1),
        "uneven@b": (["b"], 2),
    }


def test_gpu_index_beyond_the_visible_gpus_is_a_placement_finding(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        {
            "m": 'backend: "pytorch"\ninstance_group [ { count: 1, kind: KIND_GPU, gpus: [ 2 ] } ]\n'
            'parameters: { key: "gpuadmit.gpu_gb", value: { string_value: "1" } }\n'
        },
        plan=TWO_GPUS,
    )
    (finding,) = only(judge(repo), "placement")
    assert finding.message == "m: placed on gpu2, which the plan does not declare"


def test_gpuadmit_parameters_fill_what_triton_cannot_hold(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        {
            "m": 'backend: "pytorch"\nmax_batch_size: 4\n'
            'parameters: { key: "gpuadmit.gpu_gb", value: { string_value: "2.5" } }\n'
            'parameters: { key: "gpuadmit.latency-critical", value: { string_value: "yes" } }\n'
            'parameters: { key: "gpuadmit.sla_ms", value: { string_value: "80" } }\n'
            'parameters: { key: "gpuadmit.max_rps", value: { string_value: "100" } }\n'
        },
    )
    model = models(repo)["m"]
    assert (model.gpu_gb, model.latency_critical, model.sla_ms) == (2.5, True, 80)
    assert model.rate_limit is not None and model.rate_limit["max_rps"] == 100
    assert model.caps is not None and model.caps["max_batch_size"] == 4


def test_unknown_or_bad_gpuadmit_parameter_is_a_schema_finding(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        {
            "m": 'backend: "pytorch"\n'
            'parameters: { key: "gpuadmit.gpu_gbs", value: { string_value: "2" } }\n'
            'parameters: { key: "gpuadmit.sla_ms", value: { string_value: "-5" } }\n'
        },
    )
    report = judge(repo)
    messages = {(f.line, f.message) for f in only(report, "schema")}
    assert (2, "m: parameter gpuadmit.gpu_gbs: unknown gpuadmit parameter; did you mean 'gpuadmit.gpu_gb'?") in messages
    assert any(line == 3 and "sla_ms: Input should be greater than 0" in m for line, m in messages)
    assert report.exit_code() == 2


def test_rate_limiter_priority_and_queue_policy_map_to_the_plan(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        {
            "m": 'backend: "onnxruntime"\n'
            "dynamic_batching {\n  priority_levels: 2\n  default_priority_level: 2\n"
            "  default_queue_policy { max_queue_size: 10 }\n"
            "  priority_queue_policy { key: 2 value { max_queue_size: 5 timeout_action: DELAY default_timeout_microseconds: 30000 } }\n}\n"
            'instance_group [ { count: 2, kind: KIND_GPU, rate_limiter { resources [ { name: "R", count: 1 } ] priority: 0 } } ]\n'
        },
        plan=TWO_GPUS.replace("gpus:", "triton: {args: ['--rate-limit=execution_count']}\ngpus:"),
    )
    model = models(repo)["m"]
    assert model.priority == 0  # Triton's 0 counts as 1, the best
    assert model.rate_limit is not None
    assert (model.rate_limit["max_queue"], model.rate_limit["queue_timeout_ms"], model.rate_limit["timeout_action"]) == (
        5,
        30,
        "delay",
    )
    assert (model.rate_limit["max_concurrency"], model.rate_limit.get("enabled", True)) == (2, True)


def test_quoted_placeholders_are_findings_but_the_model_is_still_read(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        {
            "llm": 'backend: "tensorrtllm"\nmax_batch_size: 8\n'
            '# parameters: { key: "x", value: { string_value: "${commented_out}" } }\n'
            'parameters: { key: "kv_cache_free_gpu_mem_fraction", value: { string_value: "${kv_fraction}" } }\n'
        },
    )
    report = judge(repo)
    (finding,) = only(report, "schema")
    assert finding.message == "llm: unfilled template placeholder ${kv_fraction} (line 4); Triton cannot load a template"
    assert (finding.line, finding.column) == (4, 78)
    (plan,) = report.plans
    assert plan.gpus[0].models[0][0] == "llm"


def test_memory_is_estimated_from_model_files_and_said_to_be(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"enc": 'backend: "onnxruntime"\nversion_policy: { latest { num_versions: 1 } }\n'})
    for version, size in (("1", 4 * 2**30), ("2", 3 * 2**30)):
        (repo / "enc" / version).mkdir()
        with open(repo / "enc" / version / "model.onnx", "wb") as handle:
            handle.truncate(size)  # sparse: the size is what counts
        (repo / "enc" / version / "notes.txt").write_text("x" * 1000)
    model = models(repo)["enc"]
    assert (model.gpu_gb, model.gpu_gb_estimated) == (3.0, True)
    (info,) = only(judge(repo), "memory-declared")
    assert info.severity == "info"
    assert info.message.startswith("enc: gpu_gb 3.00 GiB is an estimate from the model files (3.00 GiB in 2)")


def test_vllm_backend_reads_model_json(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"chat": 'backend: "vllm"\ninstance_group [ { count: 1, kind: KIND_MODEL } ]\n'}, plan=TWO_GPUS)
    (repo / "chat" / "1").mkdir()
    (repo / "chat" / "1" / "model.json").write_text('{"model": "x", "gpu_memory_utilization": 0.4, "tensor_parallel_size": 2}')
    model = models(repo)["chat"]
    assert (model.framework, model.memory_fraction, model.placed_on, model.gpu_gb) == ("vllm", 0.4, ["a", "b"], None)


def test_tensorflow_fraction_comes_from_backend_config(tmp_path: Path) -> None:
    plan = TWO_GPUS.replace("gpus:", "triton: {args: ['--backend-config=tensorflow,gpu-memory-fraction=0.25']}\ngpus:")
    repo = _repo(
        tmp_path, {"tf": 'platform: "tensorflow_savedmodel"\ninstance_group [ { kind: KIND_GPU, gpus: [0] } ]\n'}, plan=plan
    )
    tf = models(repo)["tf"]
    assert (tf.memory_fraction, tf.memory_growth) == (0.25, False)


def test_invalid_utf8_config_is_one_line(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"m": "name: 'm'\n"})
    (repo / "m" / "config.pbtxt").write_bytes(b'name: "m"\nbackend: "\xff"\n')
    run = run_cli("lint", str(repo))
    assert run.code == 2
    assert "config.pbtxt:2" in run.stdout and "not valid UTF-8" in run.stdout


# --- every real-world config -----------------------------------------------------------

REALWORLD_TEMPLATES = {
    "tensorrt_llm": (28, "${triton_backend} (line 28)"),
    "preprocessing": (29, "${triton_max_batch_size} (line 29)"),
    "postprocessing": (29, "${triton_max_batch_size} (line 29)"),
    "ensemble": (29, "${triton_max_batch_size} (line 29)"),
    "tensorrt_llm_bls": (29, "${triton_max_batch_size} (line 29)"),
}


@needs_realworld
@pytest.mark.parametrize("model", sorted(REALWORLD_TEMPLATES))
def test_tensorrtllm_backend_templates_yield_placeholder_findings(model: str) -> None:
    report = judge(TRITON / "tensorrtllm_backend" / model / "config.pbtxt")
    (finding,) = report.findings
    line, first = REALWORLD_TEMPLATES[model]
    assert finding.rule == "schema" and finding.severity == "error"
    assert finding.message.startswith(f"{model}: unfilled template placeholders {first}")
    assert finding.file is not None and finding.file.endswith(f"tensorrtllm_backend/{model}/config.pbtxt")
    assert finding.line == line
    assert report.exit_code() == 2


@needs_realworld
def test_tensorrt_llm_template_counts_every_distinct_placeholder() -> None:
    (finding,) = judge(TRITON / "tensorrtllm_backend" / "tensorrt_llm" / "config.pbtxt").findings
    assert finding.message.endswith("and 46 more; Triton cannot load a template")


@needs_realworld
def test_invalid_qa_configs_get_tritons_own_errors() -> None:
    report = judge(TRITON / "server" / "priority_level1" / "config.pbtxt")
    (schema,) = only(report, "schema")
    assert "priority queue policy must have priority level in range [1, 3] for priority_level1" in schema.message
    assert schema.line == 33  # `key: 4`
    report = judge(TRITON / "server" / "preserve_ordering2" / "config.pbtxt")
    (schema,) = only(report, "schema")
    assert schema.message.startswith(
        "Queue policy can not have DELAY as timeout action when 'preserve_ordering' is true for preserve_ordering2"
    )
    assert schema.line == 30


@needs_realworld
def test_priority_levels_and_queue_policies_map_to_priorities_and_queue_bounds() -> None:
    read = {}
    for name in ("priority_level1", "preserve_ordering2"):
        sources = __import__("policy.readers", fromlist=["read_paths"]).read_paths([TRITON / "server" / name]).sources
        read.update({m.name: m for s in sources for m in s.plan.models})
    level1 = read["priority_level1"]
    # Priority levels order requests inside one model, not models: no model priority,
    # and no queue policy for the default level 2.
    assert (level1.priority, level1.rate_limit) == (None, None)
    assert level1.caps is not None and level1.caps["max_batch_size"] == 8
    ordering = read["preserve_ordering2"]
    assert ordering.priority is None and ordering.rate_limit is not None
    assert (ordering.rate_limit["max_queue"], ordering.rate_limit["queue_timeout_ms"], ordering.rate_limit["timeout_action"]) == (
        0,
        1.0,
        "delay",
    )


@needs_realworld
def test_server_examples_are_one_repository_on_one_gpu() -> None:
    read = models(TRITON / "server")
    # simple_dyna_sequence and identity_fp32_timeout (KIND_CPU) use no GPU; simple_identity, a Python
    # model without instance_group, gets the Python backend's preferred KIND_GPU instance.
    assert {n: (m.framework, m.placed_on, m.instances) for n, m in read.items()} == {
        "densenet_onnx": ("onnxruntime", ["gpu0"], 1),
        "inception_graphdef": ("tensorflow", ["gpu0"], 1),
        "preserve_ordering2": ("onnxruntime", ["gpu0"], 1),
        "priority_level1": ("onnxruntime", ["gpu0"], 1),
        "resnet_torchscript": ("pytorch", ["gpu0"], 1),
        "simple": ("onnxruntime", ["gpu0"], 1),
        "simple_identity": ("python", ["gpu0"], 1),
    }
    assert {m.server for m in read.values()} == {"triton-server"}
    assert read["resnet_torchscript"].caps is not None and read["resnet_torchscript"].caps["max_batch_size"] == 32
    report = judge(TRITON / "server")
    # TensorFlow inside Triton grows on demand (tensorflow_backend's gpu-memory-fraction default 0), so
    # its size is unknown like the others'.
    assert rules(report) == {
        ("memory-declared", "densenet_onnx"),
        ("memory-declared", "inception_graphdef"),
        ("memory-declared", "preserve_ordering2"),
        ("memory-declared", "priority_level1"),
        ("memory-declared", "resnet_torchscript"),
        ("memory-declared", "simple"),
        ("memory-declared", "simple_identity"),
        ("schema", "preserve_ordering2"),
        ("schema", "priority_level1"),
    }
    for finding in report.findings:
        assert finding.file is not None and finding.file.endswith("config.pbtxt")


@needs_realworld
def test_cpu_only_configs_put_nothing_on_a_gpu() -> None:
    for name in ("identity_fp32_timeout", "simple_dyna_sequence"):
        report = judge(TRITON / "server" / name / "config.pbtxt")
        assert report.findings == [] and report.plans[0].gpus == []
    # A Python model without instance_group is on the GPU (its backend's preferred KIND_GPU), alone there.
    report = judge(TRITON / "server" / "simple_identity" / "config.pbtxt")
    assert report.findings == [] and [m for gpu in report.plans[0].gpus for m, _ in gpu.models] == ["simple_identity"]


@needs_realworld
def test_queue_policy_of_identity_timeout_maps_once_on_a_gpu(tmp_path: Path) -> None:
    folder = tmp_path / "repo" / "identity_fp32_timeout"
    folder.mkdir(parents=True)
    text = (TRITON / "server" / "identity_fp32_timeout" / "config.pbtxt").read_text()
    (folder / "config.pbtxt").write_text(text.replace("KIND_CPU", "KIND_GPU"))
    model = models(folder.parent)["identity_fp32_timeout"]
    assert model.rate_limit is not None
    assert (model.rate_limit["max_queue"], model.rate_limit["queue_timeout_ms"], model.rate_limit["timeout_action"]) == (
        0,
        1000,
        "reject",
    )
    assert model.caps is not None and model.caps["max_batch_size"] == 64


@needs_realworld
@pytest.mark.parametrize(
    ("repo", "expected"),
    [
        ("sherpa", {"encoder": ("onnxruntime", 2, 512, None)}),
        ("tutorials", {"text_recognition": ("onnxruntime", 2, 8, None)}),
        ("vllm_backend", {"vllm_model": ("vllm", 1, None, 0.1)}),
    ],
)
def test_other_real_repositories_map_instances_batch_and_fraction(repo: str, expected: dict[str, tuple]) -> None:  # type: ignore[type-arg]
    read = models(TRITON / repo)
    got = {
        n: (m.framework, m.instances, m.caps["max_batch_size"] if m.caps else None, m.memory_fraction) for n, m in read.items()
    }
    assert got == expected
    report = judge(TRITON / repo)
    # Each repository is one model alone on its GPU: its instances share one process, so no size is needed.
    assert rules(report) == set()


@needs_realworld
def test_the_whole_realworld_triton_folder_reads_without_a_crash() -> None:
    run = run_cli("lint", "--format", "json", str(TRITON))
    assert run.code == 2  # templates and the deliberately invalid QA configs
    assert "Traceback" not in run.stderr
    assert run.stdout.count(": unfilled template placeholder") == 5


def test_repository_folder_without_configs_is_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    from policy.errors import InputError
    from policy.readers import triton

    with pytest.raises(InputError, match="not a Triton model repository"):
        triton.read(tmp_path / "empty")
    assert os.path.isdir(tmp_path / "empty")


# --- the Python backend's default instance ----------------------------------------------

PYTHON_HF = (
    'backend: "python"\n'
    'parameters: { key: "huggingface_model", value: {string_value: "tiiuae/falcon-7b"} }\n'
    'input [ { name: "text_input", data_type: TYPE_STRING, dims: [ 1 ] } ]\n'
    'output [ { name: "text_output", data_type: TYPE_STRING, dims: [ -1 ] } ]\n'
)


def _python_repo(root: Path, configs: dict[str, str]) -> Path:
    for name, text in configs.items():
        (root / name / "1").mkdir(parents=True)
        (root / name / "config.pbtxt").write_text(text, encoding="utf-8")
        (root / name / "1" / "model.py").write_text("class TritonPythonModel: ...\n", encoding="utf-8")
    (root / "gpuadmit.yaml").write_text("gpus: [{id: gpu0, product: L4}]\ntriton: {repository: .}\n", encoding="utf-8")
    return root


def test_a_python_model_without_instance_group_runs_on_the_gpu(tmp_path: Path) -> None:
    # Triton gives a config without instance_group the backend's preferred group, and the
    # Python backend prefers KIND_GPU: one instance on every GPU the server sees.
    read = models(_python_repo(tmp_path / "repo", {"falcon7b": PYTHON_HF}))
    assert read["falcon7b"].placed_on == ["gpu0"]
    assert read["falcon7b"].instances_share_process is False  # a stub process per instance


def test_python_models_without_instance_group_share_the_gpu_with_memory_unknown(tmp_path: Path) -> None:
    repo = _python_repo(tmp_path / "repo", {"falcon7b": PYTHON_HF, "llama7b": PYTHON_HF})
    report = judge(repo)
    assert {f.model for f in only(report, "memory-declared")} == {"falcon7b", "llama7b"}
    (gpu,) = report.plans[0].gpus
    assert gpu.context_gb == 1.0  # each Python model instance is a process with its own CUDA context


def test_an_explicit_kind_auto_python_group_runs_on_the_gpu(tmp_path: Path) -> None:
    config = PYTHON_HF + "instance_group [ { count: 2 } ]\n"
    read = models(_python_repo(tmp_path / "repo", {"tokenizer": config}))
    assert read["tokenizer"].placed_on == ["gpu0"] and read["tokenizer"].instances == 2


def test_a_python_model_on_kind_cpu_stays_off_the_gpu(tmp_path: Path) -> None:
    config = PYTHON_HF + "instance_group [ { kind: KIND_CPU } ]\n"
    read = models(_python_repo(tmp_path / "repo", {"tokenizer": config}))
    assert "tokenizer" not in read  # no GPU, nothing to judge

"""gpuadmit on the real configurations under ../shared/realworld, against a serving engineer's verdict.

Every file or Triton model repository there is one row of `CASES`: the exit code and the
error rule ids an engineer who runs these services would expect, each with the reason.
Exit 2 (unusable input) only where Triton or Kubernetes would refuse the input too.
Rows whose judgement needs a fix that is still to come are `xfail(strict=True)` with the
reason, so the test flips when the fix lands. The folder is not part of the project
(its files are copied from public repositories, sources in its SOURCES.md): the test is
skipped where it is absent, and the files are never copied into the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from policy.api import Linter
from policy.report import Report

REALWORLD = Path(__file__).resolve().parents[1] / ".." / "shared" / "realworld"

pytestmark = pytest.mark.skipif(not REALWORLD.is_dir(), reason="../shared/realworld is not checked out here")


@dataclass(frozen=True)
class Case:
    path: str  # relative to ../shared/realworld: a file, or a Triton model repository
    exit: int
    errors: frozenset[str]  # the rule ids of the error findings, exactly
    reason: str
    warnings: frozenset[str] = frozenset()  # rule ids that must be among the warnings
    judged: bool = False  # the input holds GPUs: a model must land on one, or a finding must say why not
    xfail: str = ""

    @property
    def id(self) -> str:
        return self.path


def case(path: str, exit: int, errors: set[str], reason: str, **kw: object) -> Case:
    return Case(path, exit, frozenset(errors), reason, **kw)  # type: ignore[arg-type]


CASES = [
    # -- Kubernetes manifests (realworld/k8s) ---------------------------------------------
    case("k8s/admissionreview-request.json", 0, set(), "a Pod without GPUs: nothing to judge"),
    case("k8s/kubernetes-api/admission.k8s.io.v1.AdmissionReview.json", 0, set(), "API fixture without GPUs"),
    case("k8s/gpu-operator/plugin-config.yaml", 0, set(), "device-plugin config, not a workload"),
    case("k8s/split-gpu-on-k8s/time-slicing-config.yaml", 0, set(), "time-slicing ConfigMap, not a workload"),
    case(
        "k8s/gpu-operator/plugin-test.yaml",
        1,
        {"memory-declared"},
        "5 replicas time-sliced on one T4 (Tesla-T4-SHARED) with no memory given: shared, so memory must be known",
    ),
    case("k8s/hami/default_use.yaml", 0, set(), "one Pod with a 3000 MiB HAMi limit"),
    case("k8s/hami/vllm_cross_vgpu.yaml", 0, set(), "vLLM tp 2 at 0.95 of a 30 % HAMi share of each GPU"),
    case("k8s/kserve/autoscale_gpu.yaml", 0, set(), "one TensorFlow predictor alone on one GPU"),
    case("k8s/kserve/hf_isvc.yaml", 0, set(), "one Llama-2-7b predictor alone on one whole GPU"),
    case("k8s/kserve/kserve-isvc.yaml", 0, set(), "one vLLM at 0.95 alone on one GPU"),
    case("k8s/kserve/llm-inference-service-qwen2-7b-gpu-no-scheduler.yaml", 0, set(), "vLLM replicas, one GPU each"),
    case(
        "k8s/vllm/vllm-deployment.yaml",
        0,
        set(),
        "Qwen3-235B tp 4 on H100s at 0.92: fits, little headroom",
        warnings=frozenset({"memory-headroom"}),
    ),
    # -- Triton model repositories (realworld/triton) -------------------------------------
    case(
        "triton/server",
        2,
        {"schema", "memory-declared"},
        "two deliberately invalid QA configs Triton refuses to load; six models share one GPU with memory unknown",
    ),
    case("triton/tensorrtllm_backend", 2, {"schema"}, "templates with unfilled ${...} placeholders: Triton cannot load them"),
    case("triton/sherpa", 0, set(), "one ONNX encoder, 2 instances in one server, alone on its GPU"),
    case("triton/tutorials", 0, set(), "one ONNX model, 2 instances in one server, alone on its GPU"),
    case("triton/vllm_backend", 0, set(), "one vLLM model at gpu_memory_utilization 0.1"),
    # -- more/: Kubernetes, custom resources, Helm --------------------------------------
    case("more/aibrix/adapter-base.yaml", 0, set(), "vLLM at the default fraction alone on one GPU per replica"),
    case("more/aibrix/deepseek-coder-7b-l20-deployment.yaml", 0, set(), "vLLM on one L20 per replica"),
    case("more/aibrix/qwen3-32b-tp4-replicas2.yaml", 0, set(), "vLLM tp 4 on 4 GPUs per replica"),
    case("more/aibrix/deepseek-r1-huggingface.yaml", 0, set(), "RayClusterFleet with 8-GPU Ray workers", judged=True),
    case("more/hami/dynamic_mig_example.yaml", 0, set(), "HAMi dynamic MIG: 8000 MiB on each of 2 GPUs"),
    case("more/hami/job-on-hami.yml", 0, set(), "one vLLM bench server within a 50 % HAMi memory limit"),
    case("more/hami/use_memory_fraction.yaml", 0, set(), "one Pod with 50 % of each of 2 GPUs, enforced by HAMi"),
    case("more/hami/use_sharing_card.yaml", 0, set(), "HAMi's own 40 % + 60 % sharing example: limits sum to 100 %"),
    case("more/kserve/llmisvc-agentic-single-gpu.yaml", 0, set(), "one vLLM on one GPU"),
    case("more/kserve/llmisvc-dp-ep-deepseek-r1.yaml", 0, set(), "DeepSeek-R1 at 0.95, 8 GPUs per pod"),
    case("more/kserve/llmisvc-pd-qwen2-7b-gpu.yaml", 0, set(), "prefill and decode pods, one GPU each"),
    case("more/kserve/tensorflow-gpu.yaml", 0, set(), "one TensorFlow predictor alone on a T4"),
    case("more/kuberay/ray-service.high-throughput-llm.yaml", 0, set(), "Ray Serve LLM, 1 L4 per worker", judged=True),
    case("more/kuberay/ray-service.stable-diffusion.yaml", 0, set(), "Ray Serve, one GPU worker", judged=True),
    case("more/llm-d/llama4-fp8-values.yaml", 0, set(), "Helm values, not a manifest"),
    case("more/llm-d/qwen3-8b-pd-4p4d-singlenode.yaml", 0, set(), "4 prefill + 4 decode pods, one GPU each"),
    case("more/mig-parted/config.yaml", 0, set(), "mig-parted geometry config, not a workload"),
    case("more/nim/dynamo-disagg-planner.yaml", 0, set(), "DynamoGraphDeployment, one GPU per worker", judged=True),
    case("more/nim/llama3-70b-instruct_4xa100_1.0.0.yaml", 0, set(), "NIM Llama3-70B alone on 4 whole A100 80GB"),
    case("more/nim/runtime-llama3-70b-instruct-1.0.0.yaml", 0, set(), "ClusterServingRuntime without GPU resources"),
    case("more/production-stack/gie-gpu-deployment.yaml", 0, set(), "vLLM Llama-3.2-1B, one GPU per replica"),
    case("more/production-stack/values-02-basic-config.yaml", 0, set(), "Helm values, not a manifest"),
    case("more/production-stack/vllmruntime-sample.yaml", 0, set(), "VLLMRuntime at 0.8 on one GPU", judged=True),
    case("more/sglang/k8s-sglang-distributed-sts.yaml", 0, set(), "SGLang tp 16 over 2 pods of 8 GPUs"),
    case("more/sglang/k8s-sglang-service.yaml", 0, set(), "SGLang at its default fraction alone on one GPU"),
    case(
        "more/triton-server-deploy/gcp-helm-template-deployment.yaml",
        0,
        set(),
        "an unrendered Helm template: skipped with a note (rendered, it is a Triton Deployment)",
    ),
    case("more/triton-server-deploy/gcp-values.yaml", 0, set(), "Helm values, not a manifest"),
    # -- more/: Triton model repositories -------------------------------------------------
    case("more/python_backend/instance_kind", 0, set(), "Python model on KIND_CPU"),
    case("more/python_backend/preprocessing_repo", 0, set(), "one TensorRT ResNet-50 alone on the GPU"),
    case("more/python_backend/pytorch", 0, set(), "Python model on KIND_CPU"),
    case("more/tensorrtllm_backend/disaggregated", 2, {"schema"}, "template with ${...} placeholders"),
    case("more/tensorrtllm_backend/gpt", 2, {"schema"}, "template with ${engine_dir}"),
    case("more/tensorrtllm_backend/multimodal", 2, {"schema"}, "template with ${...} placeholders"),
    case("more/tensorrtllm_backend/llmapi", 0, set(), "TinyLlama through the LLM API, alone on its GPU", judged=True),
    case(
        "more/triton-server-gke/model-store",
        1,
        {"memory-declared"},
        "four BERT GPU models share one GPU in one server with memory unknown",
    ),
    case("more/triton-server-qa/add_sub_gpu", 0, set(), "one small Python model alone on its GPU"),
    case("more/triton-server-qa/cuda_memory_consumer", 0, set(), "one QA model pinned to GPU 0, alone"),
    case(
        "more/triton-server-qa/default_priority_level1",
        2,
        {"schema"},
        "default_priority_level 5 > priority_levels 3: Triton refuses the config (its `expected` error)",
    ),
    case("more/triton-server-qa/jetson_peoplenet", 0, set(), "one TensorRT model, 3 instances in one server"),
    case("more/triton-server-qa/max_priority_level", 0, set(), "identity backend on the CPU"),
    case("more/triton-server-qa/passive_instance", 0, set(), "one model with a passive GPU instance, alone"),
    case(
        "more/tutorials/hf_transformers",
        1,
        {"memory-declared"},
        "three HF Python models on the GPU (the Python backend's preferred KIND_GPU, device_map='auto') share it, memory unknown",
    ),
    case("more/tutorials/llama2vllm", 0, set(), "one vLLM model at 0.5"),
    case(
        "more/tutorials/llava1.5/model_repository",
        2,
        {"schema", "memory-declared"},
        "tensorrt_llm is a template Triton cannot load; three models share the GPU with memory unknown",
    ),
    case(
        "more/tutorials/part5_ensembles/model_repository",
        1,
        {"memory-declared"},
        "two ONNX models share one GPU in one server with memory unknown",
    ),
]

#: Files under realworld that are not serving configurations, with why.
NOT_CONFIGURATIONS = {
    "SOURCES.md": "where the files came from",
    "more/SOURCES.md": "where the files came from",
    "schemas/sarif-schema-2.1.0.json": "the SARIF schema the writers are checked against",
    "gfd/k8s-device-plugin/expected-output.txt": "GFD's expected label regexes, not node labels",
    "gfd/k8s-device-plugin/expected-output-mig-mixed.txt": "GFD's expected label regexes, not node labels",
}

_LINTER: list[Linter] = []


def _judge(path: Path) -> Report:
    if not _LINTER:
        _LINTER.append(Linter())
    return _LINTER[0].lint_paths([str(path)])


def _params() -> list[object]:
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []) for c in CASES]


@pytest.mark.parametrize("real", _params())
def test_real_configuration_gets_a_serving_engineers_verdict(real: Case) -> None:
    report = _judge(REALWORLD / real.path)
    counted = [f for f in report.findings if f.counts]
    errors = {f.rule for f in counted if f.severity == "error"}
    warnings = {f.rule for f in counted if f.severity == "warning"}
    assert (report.exit_code(), errors) == (real.exit, real.errors), [(f.severity, f.rule, f.message) for f in counted]
    assert real.warnings <= warnings
    if real.judged:
        on_gpus = [m for plan in report.plans for gpu in plan.gpus for m, _ in gpu.models]
        assert on_gpus or counted, "holds GPUs, but gpuadmit put no model on one and said nothing"


def test_exit_2_only_where_triton_or_kubernetes_refuses_too() -> None:
    for real in CASES:
        if real.exit == 2:
            assert "schema" in real.errors and ("Triton" in real.reason or "template" in real.reason), real.path


def test_every_real_file_has_a_row() -> None:
    units = [REALWORLD / c.path for c in CASES]
    for path in sorted(p for p in REALWORLD.rglob("*") if p.is_file()):
        rel = path.relative_to(REALWORLD).as_posix()
        if rel in NOT_CONFIGURATIONS or path.name == "expected":  # Triton QA's expected error text
            continue
        assert any(path == u or u in path.parents for u in units), f"{rel} has no row in CASES"

"""Kubernetes manifests read as plans: GPU requests, sharing, flags, annotations, verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SAMPLES, run_cli
from reader_helpers import REALWORLD, judge, models, needs_realworld, only, rules

K8S = REALWORLD / "k8s"


def _write(tmp_path: Path, text: str, name: str = "manifest.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _deployment(
    name: str,
    *,
    args: str = "[]",
    resources: str = "nvidia.com/gpu: 1",
    annotations: str = "{}",
    selector: str = "{}",
    extra: str = "",
    image: str = "vllm/vllm-openai:v0.8",
    replicas: int = 1,
) -> str:
    return f"""---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  annotations: {annotations}
spec:
  replicas: {replicas}
  template:
    spec:
      nodeSelector: {selector}
{extra}      containers:
        - name: main
          image: {image}
          args: {args}
          resources:
            limits: {{{resources}}}
"""


SHARED_L40S = "{nvidia.com/gpu.product: NVIDIA-L40S-SHARED}"


# --- the sample manifest set -------------------------------------------------------------


def test_sample_vllm_at_default_fraction_beside_embeddings_is_rejected() -> None:
    path = SAMPLES / "k8s" / "chat-and-embeddings.yaml"
    report = judge(path)
    # One overflow, one error: memory-fit names the greedy reservation that causes it.
    (greedy,) = only(report, "memory-fit")
    assert "81.5 GiB committed > 76.0 GiB usable" in greedy.message
    assert "chat-llm (vllm gpu_memory_utilization 0.9 × 80.0 GiB = 72.0 GiB)" in greedy.message
    assert rules(report) == {("memory-fit", None), ("isolation", None)}
    assert report.exit_code() == 1
    read = models(path)
    chat, embeddings = read["chat-llm"], read["embeddings"]
    assert chat.placed_on == embeddings.placed_on == ["shared-nvidia-a100-sxm4-80gb"]
    # priorityClassName orders scheduling, not GPU time: it is no priority (docs/PROTECTION.md).
    assert (chat.framework, chat.memory_fraction, chat.priority, chat.latency_critical) == ("vllm", 0.9, None, True)
    assert chat.caps is not None and chat.caps["max_batch_size"] == 32
    assert (embeddings.priority, embeddings.instances, embeddings.gpu_gb) == (None, 2, 4)
    # GPU findings point at where the GPU is chosen: the nvidia.com/gpu.product node selector.
    assert greedy.file == str(path) and (greedy.line, greedy.column) == (38, 9)


def test_vllm_at_0_9_beside_another_model_on_a_time_sliced_gpu_is_greedy(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _deployment("chat", args="[--gpu-memory-utilization, '0.9']", selector=SHARED_L40S)
        + _deployment("rerank", image="reranker:1", selector=SHARED_L40S, annotations="{gpuadmit.dev/gpu-gb: '6'}"),
    )
    report = judge(path)
    (greedy,) = only(report, "memory-fit")
    assert "47.5 GiB committed > 42.7 GiB usable" in greedy.message
    assert "chat (vllm gpu_memory_utilization 0.9 × 45.0 GiB = 40.5 GiB)" in greedy.message
    assert not only(report, "greedy-allocator")
    (plan,) = report.plans
    (gpu,) = plan.gpus
    assert gpu.product == "L40S" and gpu.sharing == "time-slicing"


def test_fraction_that_leaves_room_is_accepted(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _deployment("chat", args="[--gpu-memory-utilization=0.5]", selector=SHARED_L40S)
        + _deployment(
            "rerank",
            image="reranker:1",
            selector=SHARED_L40S,
            annotations="{gpuadmit.dev/gpu-gb: '3', gpuadmit.dev/max-batch-size: '8'}",
        ),
    )
    assert rules(judge(path)) == set()


def test_exclusive_gpus_judge_one_replica(tmp_path: Path) -> None:
    path = _write(tmp_path, _deployment("chat", args="[--tensor-parallel-size, '2']", resources="nvidia.com/gpu: 2", replicas=8))
    (chat,) = models(path).values()
    assert (chat.placed_on, chat.instances) == (["chat-gpu0", "chat-gpu1"], 1)


def test_hami_share_scales_the_vllm_fraction_and_caps_compute(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _deployment(
            "chat",
            args="['vllm serve m --gpu-memory-utilization 0.8']",
            selector="{nvidia.com/gpu.product: NVIDIA-L40S}",
            resources="nvidia.com/gpu: 1, nvidia.com/gpumem-percentage: 50, nvidia.com/gpucores: 40",
        )
        + _deployment(
            "bert",
            image="bert:1",
            resources="nvidia.com/gpu: 1, nvidia.com/gpumem: 4096",
            selector="{nvidia.com/gpu.product: NVIDIA-L40S}",
            replicas=3,
        ),
    )
    read = models(path)
    chat, bert = read["chat"], read["bert"]
    assert chat.placed_on == bert.placed_on == ["hami-nvidia-l40s"]
    assert chat.memory_fraction == pytest.approx(0.4)
    assert chat.caps is not None and chat.caps["compute_pct"] == 40
    assert (bert.gpu_gb, bert.memory_limit_gb, bert.instances) == (4.0, 4.0, 3)


def test_mig_resource_runs_on_its_slice(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _deployment(
            "guard",
            image="guard:1",
            resources="nvidia.com/mig-3g.40gb: 1",
            selector="{nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}",
            annotations="{gpuadmit.dev/gpu-gb: '10'}",
        ),
    )
    report = judge(path)
    (plan,) = report.plans
    # A 3g.40gb slice of an H100 holds 39.5 GiB as NVML reports it.
    assert ("guard-mig:0", 39.5, ["guard"]) in [(g.id, g.capacity_gb, [m for m, _ in g.models]) for g in plan.gpus]
    assert rules(report) == set()


def test_priority_classes_are_not_gpu_priorities(tmp_path: Path) -> None:
    classes = (
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n---\n"
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: low}\nvalue: 10\n"
    )
    path = _write(
        tmp_path,
        classes
        + _deployment("a", image="a:1", extra="      priorityClassName: high\n")
        + _deployment("b", image="b:1", extra="      priorityClassName: low\n")
        + _deployment("c", image="c:1")
        + _deployment("d", image="d:1", extra="      priorityClassName: missing\n", annotations="{gpuadmit.dev/priority: '7'}"),
    )
    read = models(path)
    assert {n: m.priority for n, m in read.items()} == {"a": None, "b": None, "c": None, "d": 7}
    assert only(judge(path), "schema") == []


def test_annotations_set_protection_and_waive_a_rule(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _deployment(
            "chat",
            args="[--gpu-memory-utilization=0.5]",
            selector=SHARED_L40S,
            annotations="{gpuadmit.dev/latency-critical: 'true', gpuadmit.dev/sla-ms: '200', gpuadmit.dev/priority: '1',"
            " gpuadmit.dev/max-concurrency: '8', gpuadmit.dev/max-queue: '16', gpuadmit.dev/queue-timeout-ms: '150'}",
        )
        + _deployment(
            "bulk",
            image="bulk:1",
            selector=SHARED_L40S,
            annotations="{gpuadmit.dev/gpu-gb: '2', gpuadmit.dev/priority: '5',"
            " gpuadmit.dev/waive: 'bulk-capped=only runs at night; expires=2099-01-31'}",
        ),
    )
    report = judge(path)
    waived = [f for f in report.findings if f.waived]
    assert [(f.rule, f.model, f.waiver_reason) for f in waived] == [("bulk-capped", "bulk", "only runs at night")]
    chat = models(path)["chat"]
    assert chat.rate_limit is not None
    assert (chat.rate_limit["max_concurrency"], chat.rate_limit["max_queue"], chat.rate_limit["queue_timeout_ms"]) == (8, 16, 150)


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ("{gpuadmit.dev/sla: '200'}", "gpuadmit.dev/sla: unknown gpuadmit annotation; did you mean 'gpuadmit.dev/sla-ms'?"),
        ("{gpuadmit.dev/sla-ms: fast}", "gpuadmit.dev/sla-ms: expected a number, got 'fast'"),
        ("{gpuadmit.dev/sla-ms: '-3'}", "sla_ms: chat: Input should be greater than 0 (got -3.0)"),
        ("{gpuadmit.dev/waive: 'bulk-capped'}", 'gpuadmit.dev/waive: expected "<rule>=<reason>; expires=YYYY-MM-DD"'),
    ],
)
def test_bad_annotation_is_exit_2_with_its_line(tmp_path: Path, annotations: str, message: str) -> None:
    path = _write(tmp_path, _deployment("chat", annotations=annotations))
    run = run_cli("lint", str(path))
    assert run.code == 2
    assert f"{path}:6" in run.stdout and message in run.stdout
    assert "Traceback" not in run.stderr


def test_bad_gpu_quantity_is_exit_2(tmp_path: Path) -> None:
    path = _write(tmp_path, _deployment("chat", resources="nvidia.com/gpu: one"))
    run = run_cli("lint", str(path))
    assert run.code == 2
    assert "nvidia.com/gpu: expected a whole number, got 'one'" in run.stdout


def test_sglang_and_kserve_concurrency(tmp_path: Path) -> None:
    isvc = """apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: qa}
spec:
  predictor:
    containerConcurrency: 4
    containers:
      - name: kserve-container
        image: lmsysorg/sglang:latest
        command: [python3, -m, sglang.launch_server]
        args: [--mem-fraction-static, "0.6", --max-running-requests, "16"]
        resources: {limits: {nvidia.com/gpu: "1"}}
"""
    (qa,) = models(_write(tmp_path, isvc)).values()
    assert (qa.framework, qa.memory_fraction) == ("sglang", 0.6)
    assert qa.rate_limit is not None and qa.rate_limit["max_concurrency"] == 4
    assert qa.caps is not None and qa.caps["max_batch_size"] == 16


def test_tritonserver_over_a_repository_beside_the_manifest(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(SAMPLES / "triton", tmp_path / "models")
    (tmp_path / "models" / "gpuadmit.yaml").unlink()
    path = _write(
        tmp_path,
        _deployment(
            "triton",
            image="nvcr.io/nvidia/tritonserver:25.01-py3",
            args="[tritonserver, --model-repository=models]",
            selector="{nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}",
        ),
    )
    read = models(path)
    assert set(read) == {"chat-llm", "embeddings", "guard", "reranker"}
    assert {m.server for m in read.values()} == {"triton"}
    # Started without --rate-limit=execution_count: the rate limiters are off.
    assert all(
        m.rate_limit is not None and not m.rate_limit.get("enabled", True)
        for m in read.values()
        if m.name != "embeddings" or m.rate_limit
    )
    report = judge(path)
    (off,) = [f for f in only(report, "latency-critical-rate-limit") if f.model == "guard"]
    assert "switched off on the server" in off.message
    assert off.file == str(tmp_path / "models" / "guard" / "config.pbtxt")


def test_files_without_gpu_workloads_give_no_plan(tmp_path: Path) -> None:
    path = _write(tmp_path, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n")
    report = judge(path)
    assert report.plans == [] and report.findings == []


# --- every real-world manifest ------------------------------------------------------------

REALWORLD_MODELS = {
    # file: {model: (framework, gpus, instances, memory_fraction)}
    "vllm/vllm-deployment.yaml": {
        "vllm-qwen3-235b": ("vllm", [f"vllm-qwen3-235b-gpu{n}" for n in range(4)], 1, 0.92),
    },
    "kserve/kserve-isvc.yaml": {"llama-31-8b-instruct": ("vllm", ["llama-31-8b-instruct-gpu"], 1, 0.95)},
    "kserve/hf_isvc.yaml": {"huggingface-llama2": ("pytorch", ["huggingface-llama2-gpu"], 1, None)},
    "kserve/autoscale_gpu.yaml": {"flowers-sample-gpu": ("tensorflow", ["flowers-sample-gpu-gpu"], 1, None)},
    "kserve/llm-inference-service-qwen2-7b-gpu-no-scheduler.yaml": {
        "qwen2-7b-instruct-single-no-scheduler": ("vllm", ["qwen2-7b-instruct-single-no-scheduler-gpu"], 1, None)
    },
    "hami/default_use.yaml": {"gpu-pod": ("unknown", ["hami-gpu"], 1, None)},
    "hami/vllm_cross_vgpu.yaml": {"vllm-cross-vgpu": ("vllm", ["hami-gpu-0", "hami-gpu-1"], 1, 0.285)},
    "gpu-operator/plugin-test.yaml": {"nvidia-plugin-test": ("unknown", ["shared-tesla-t4"], 5, None)},
}
REALWORLD_VERDICTS = {
    "vllm/vllm-deployment.yaml": {("memory-headroom", None)},
    "kserve/kserve-isvc.yaml": set(),
    "kserve/hf_isvc.yaml": set(),  # alone on one whole GPU: its size is not needed
    "kserve/autoscale_gpu.yaml": set(),
    "kserve/llm-inference-service-qwen2-7b-gpu-no-scheduler.yaml": set(),
    "hami/default_use.yaml": set(),
    "hami/vllm_cross_vgpu.yaml": set(),
    "gpu-operator/plugin-test.yaml": {("memory-declared", "nvidia-plugin-test")},
}
NO_GPU_WORKLOADS = [
    "gpu-operator/plugin-config.yaml",
    "split-gpu-on-k8s/time-slicing-config.yaml",
    "admissionreview-request.json",
    "kubernetes-api/admission.k8s.io.v1.AdmissionReview.json",
]


@needs_realworld
@pytest.mark.parametrize("name", sorted(REALWORLD_MODELS))
def test_realworld_manifest_maps_and_gets_its_verdict(name: str) -> None:
    read = models(K8S / name)
    got = {
        n: (m.framework, m.placed_on, m.instances, None if m.memory_fraction is None else round(m.memory_fraction, 3))
        for n, m in read.items()
    }
    assert got == REALWORLD_MODELS[name]
    report = judge(K8S / name)
    assert rules(report) == REALWORLD_VERDICTS[name]
    for finding in report.findings:
        assert finding.file == str(K8S / name) and finding.line


@needs_realworld
def test_realworld_hami_requests_become_limits_and_compute_caps() -> None:
    pod = models(K8S / "hami" / "default_use.yaml")["gpu-pod"]
    assert pod.gpu_gb == pytest.approx(3000 / 1024) and pod.caps is not None and pod.caps["compute_pct"] == 30
    vllm = models(K8S / "hami" / "vllm_cross_vgpu.yaml")["vllm-cross-vgpu"]
    assert vllm.caps is not None and (vllm.caps["compute_pct"], vllm.caps["max_batch_size"]) == (30, 32)


@needs_realworld
def test_realworld_shared_t4_is_found_in_the_catalog() -> None:
    (plan,) = judge(K8S / "gpu-operator" / "plugin-test.yaml").plans
    (gpu,) = plan.gpus
    assert (gpu.product, gpu.capacity_gb, gpu.sharing) == ("T4", 15.0, "time-slicing")


@needs_realworld
@pytest.mark.parametrize("name", NO_GPU_WORKLOADS)
def test_realworld_inputs_without_gpu_workloads_are_read_quietly(name: str) -> None:
    report = judge(K8S / name)
    assert report.plans == [] and report.findings == []


@needs_realworld
def test_the_whole_realworld_k8s_folder_reads_without_a_crash() -> None:
    run = run_cli("lint", str(K8S))
    assert run.code == 1
    assert "Traceback" not in run.stderr
    # One folder is one cluster: its eight files' GPU workloads fall into four sharing
    # domains (the gpu-operator time-slicing config shares every `nvidia.com/gpu`).
    assert "4 plans" in run.stdout


# --- cloud node labels: GKE's accelerator label names the GPU --------------------------------


def test_a_gke_accelerator_selector_names_the_catalog_product(tmp_path: Path) -> None:
    path = _write(tmp_path, _deployment("chat", selector="{cloud.google.com/gke-accelerator: nvidia-h100-mega-80gb}"))
    (plan,) = judge(path).plans
    (gpu,) = plan.gpus
    assert (gpu.product, gpu.capacity_gb) == ("H100-80GB", 81559 / 1024)


def test_a_gke_accelerator_in_required_node_affinity_names_the_product(tmp_path: Path) -> None:
    affinity = (
        "      affinity:\n        nodeAffinity:\n          requiredDuringSchedulingIgnoredDuringExecution:\n"
        "            nodeSelectorTerms:\n              - matchExpressions:\n"
        "                  - {key: cloud.google.com/gke-accelerator, operator: In, values: [nvidia-l4]}\n"
    )
    path = _write(tmp_path, _deployment("chat", extra=affinity))
    (gpu,) = judge(path).plans[0].gpus
    assert gpu.product == "L4"


def test_gke_time_sharing_shares_one_gpu_between_workloads(tmp_path: Path) -> None:
    selector = "{cloud.google.com/gke-accelerator: nvidia-l4, cloud.google.com/gke-gpu-sharing-strategy: time-sharing}"
    path = _write(
        tmp_path,
        _deployment("chat", selector=selector, args="[--gpu-memory-utilization, '0.5']")
        + _deployment("rerank", selector=selector, image="reranker:1", annotations="{gpuadmit.dev/gpu-gb: '4'}"),
    )
    (gpu,) = judge(path).plans[0].gpus
    assert (gpu.product, gpu.sharing, sorted(m for m, _ in gpu.models)) == ("L4", "time-slicing", ["chat", "rerank"])


def test_a_gke_node_in_the_manifest_gives_the_product_to_workloads_without_a_selector(tmp_path: Path) -> None:
    node = (
        "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: gke-pool-1\n"
        "  labels: {cloud.google.com/gke-accelerator: nvidia-tesla-t4}\n"
    )
    path = _write(tmp_path, node + _deployment("ocr", image="ocr:1", annotations="{gpuadmit.dev/gpu-gb: '4'}"))
    (gpu,) = judge(path).plans[0].gpus
    assert gpu.product == "T4"

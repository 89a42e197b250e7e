"""How each framework holds GPU memory, as read from real configuration shapes.

Every case is written in the shape of a real file under shared/realworld (Triton
repositories, KServe and Kubernetes manifests, HAMi examples), never copied from one.
The numbers and their sources are in docs/SOURCES.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.facts import build_facts, sglang_default_fraction
from policy.plan import ServingPlan

from reader_helpers import REALWORLD, judge, models, needs_realworld, only, rules


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _gpu(report_plan: ServingPlan, gpu: str = "gpu0") -> dict:  # type: ignore[type-arg]
    return next(g for g in build_facts(report_plan).gpus if g["id"] == gpu)


# --- Triton ------------------------------------------------------------------------------

VLLM_CONFIG = 'backend: "vllm"\ninstance_group [ { count: 1, kind: KIND_MODEL } ]\n'
MODEL_JSON = '{"model": "meta-llama/Llama-2-7b-chat-hf", "disable_log_requests": true}\n'


def test_three_vllm_models_at_default_in_one_server_fail_without_capacity(tmp_path: Path) -> None:
    repo = _write(
        tmp_path / "repo",
        {f"{n}/config.pbtxt": VLLM_CONFIG for n in ("chat", "code", "summary")}
        | {f"{n}/1/model.json": MODEL_JSON for n in ("chat", "code", "summary")},
    )
    report = judge(repo)
    greedy = only(report, "greedy-allocator")
    assert [f.message for f in greedy if "add up to 2.76 > 1.0" in f.message] == [f.message for f in greedy]
    assert "left at the default: chat (vllm gpu_memory_utilization unset = 0.92" in greedy[0].message


def test_tensorflow_in_triton_grows_on_demand_by_default(tmp_path: Path) -> None:
    repo = _write(
        tmp_path / "repo",
        {
            "bert/config.pbtxt": 'platform: "tensorflow_savedmodel"\nmax_batch_size: 8\n'
            "instance_group [ { count: 2, kind: KIND_GPU } ]\n",
            "resnet/config.pbtxt": 'platform: "onnxruntime_onnx"\nmax_batch_size: 8\n'
            'parameters { key: "gpu_mem_limit" value: { string_value: "4294967296" } }\n',
            "gpuadmit.yaml": "gpus: [{id: gpu0, product: L4}]\ntriton: {repository: .}\nmodels: [{name: bert, gpu_gb: 2}]\n",
        },
    )
    bert = models(repo)["bert"]
    assert (bert.framework, bert.memory_growth, bert.memory_fraction) == ("tensorflow", True, None)
    assert rules(judge(repo)) == set()


def test_tensorflow_in_triton_at_a_fraction_reserves_that_fraction_only(tmp_path: Path) -> None:
    repo = _write(
        tmp_path / "repo",
        {
            "bert/config.pbtxt": 'platform: "tensorflow_savedmodel"\ninstance_group [ { count: 1, kind: KIND_GPU } ]\n',
            "guard/config.pbtxt": 'backend: "pytorch"\ninstance_group [ { count: 1, kind: KIND_GPU } ]\n',
            "gpuadmit.yaml": "gpus: [{id: gpu0, product: A100-80GB}]\n"
            "triton: {repository: ., args: ['--backend-config=tensorflow,gpu-memory-fraction=0.2']}\n"
            "models: [{name: guard, gpu_gb: 6}]\n",
        },
    )
    assert models(repo)["bert"].memory_fraction == 0.2
    report = judge(repo)
    assert not only(report, "greedy-allocator") and not only(report, "memory-fit")
    (plan,) = report.plans
    assert plan.gpus[0].greedy_gb == pytest.approx(0.2 * 80)


def test_onnxruntime_gpu_mem_limit_is_its_declared_memory(tmp_path: Path) -> None:
    repo = _write(
        tmp_path / "repo",
        {
            "densenet/config.pbtxt": 'platform: "onnxruntime_onnx"\ninstance_group [ { count: 1, kind: KIND_GPU } ]\n'
            'parameters { key: "gpu_mem_limit" value: { string_value: "2147483648" } }\n',
            "classifier/config.pbtxt": 'backend: "pytorch"\ninstance_group [ { count: 1, kind: KIND_GPU } ]\n',
            "gpuadmit.yaml": "gpus: [{id: gpu0, product: T4}]\ntriton: {repository: .}\nmodels: [{name: classifier, gpu_gb: 1}]\n",
        },
    )
    report = judge(repo)
    assert not [f for f in only(report, "memory-declared") if f.model == "densenet"]
    (plan,) = report.plans
    assert plan.gpus[0].declared_gb + plan.gpus[0].greedy_gb == pytest.approx(2 + 1)


def test_eight_instances_in_one_tritonserver_hold_one_cuda_context(tmp_path: Path) -> None:
    repo = _write(
        tmp_path / "repo",
        {
            "encoder/config.pbtxt": 'backend: "onnxruntime"\ninstance_group [ { count: 8, kind: KIND_GPU } ]\n'
            'parameters { key: "gpu_mem_limit" value: { string_value: "1073741824" } }\n',
            "gpuadmit.yaml": "gpus: [{id: gpu0, product: L4}]\ntriton: {repository: .}\n",
        },
    )
    (plan,) = judge(repo).plans
    assert plan.gpus[0].context_gb == pytest.approx(0.5)


def test_llm_api_model_runs_on_the_gpu_under_a_cpu_instance_group(tmp_path: Path) -> None:
    config = 'name: "tensorrt_llm"\nbackend: "python"\ninstance_group [\n  {\n    count: 1\n    kind : KIND_CPU\n  }\n]\n'
    engine = 'model: TinyLlama/TinyLlama-1.1B-Chat-v1.0\nbackend: "pytorch"\ntensor_parallel_size: 1\n'
    repo = _write(
        tmp_path / "repo",
        {
            "tensorrt_llm/config.pbtxt": config,
            "tensorrt_llm/1/model.yaml": engine,
            "embed/config.pbtxt": 'backend: "pytorch"\ninstance_group [ { count: 1, kind: KIND_GPU } ]\n',
            "gpuadmit.yaml": "gpus: [{id: gpu0, product: H100}]\ntriton: {repository: .}\nmodels: [{name: embed, gpu_gb: 2}]\n",
        },
    )
    llm = models(repo)["tensorrt_llm"]
    assert (llm.framework, llm.placed_on) == ("tensorrt_llm", ["gpu0"])
    greedy = only(judge(repo), "greedy-allocator")
    assert any("tensorrt_llm (tensorrt_llm kv_cache_free_gpu_mem_fraction unset = 0.9" in f.message for f in greedy)


def test_llm_api_kv_cache_bound_is_read(tmp_path: Path) -> None:
    engine = (
        "model: TinyLlama/TinyLlama-1.1B-Chat-v1.0\ntensor_parallel_size: 2\n"
        "kv_cache_config:\n  free_gpu_memory_fraction: 0.3\n  max_tokens: 8192\n"
    )
    repo = _write(
        tmp_path / "repo",
        {
            "tensorrt_llm/config.pbtxt": 'backend: "python"\ninstance_group [ { count: 1, kind: KIND_CPU } ]\n',
            "tensorrt_llm/1/model.yaml": engine,
            "gpuadmit.yaml": "gpus: [{id: a, product: H100}, {id: b, product: H100}]\ntriton: {repository: .}\n",
        },
    )
    llm = models(repo)["tensorrt_llm"]
    assert (llm.memory_fraction, llm.kv_cache_tokens, llm.placed_on) == (0.3, 8192, ["a", "b"])


def test_trtllm_max_tokens_in_paged_kv_cache_with_a_declared_size_is_not_a_default_fraction(tmp_path: Path) -> None:
    trtllm = (
        'backend: "tensorrtllm"\ninstance_group [ { count: 1, kind: KIND_CPU } ]\n'
        'parameters: { key: "max_tokens_in_paged_kv_cache" value: { string_value: "16384" } }\n'
    )
    repo = _write(
        tmp_path / "repo",
        {
            "tensorrt_llm/config.pbtxt": trtllm,
            "guard/config.pbtxt": 'backend: "pytorch"\ninstance_group [ { count: 1, kind: KIND_GPU } ]\n',
            "gpuadmit.yaml": "gpus: [{id: gpu0, product: H100}]\ntriton: {repository: .}\n"
            "models: [{name: tensorrt_llm, gpu_gb: 30}, {name: guard, gpu_gb: 4}]\n",
        },
    )
    assert models(repo)["tensorrt_llm"].kv_cache_tokens == 16384
    assert not only(judge(repo), "greedy-allocator")


# --- facts -------------------------------------------------------------------------------


def test_sglang_default_fraction_follows_its_formula() -> None:
    # server_args.py `_handle_gpu_memory_settings`: H100 80 GB (81559 MiB), TP 1
    assert sglang_default_fraction(81559, 1) == 0.835
    assert sglang_default_fraction(23034, 1) == 0.837  # L4
    assert sglang_default_fraction(143771, 1) == 0.907  # H200


def test_sglang_at_default_takes_its_computed_fraction() -> None:
    plan = ServingPlan.model_validate(
        {"gpus": [{"id": "gpu0", "memory_gb": 81559 / 1024}], "models": [{"name": "s", "framework": "sglang", "gpu": "gpu0"}]}
    )
    gpu = _gpu(plan)
    assert gpu["greedy_gb"] == pytest.approx(0.835 * 81559 / 1024)
    assert gpu["greedy_fraction_sum"] == 0.0  # of the memory free at start, not claimed up front


@pytest.mark.parametrize(("version", "fraction"), [("v0.6.3", 0.9), ("0.5.4", 0.9), ("v0.11.0", 0.92), (None, 0.92)])
def test_vllm_default_fraction_by_version(version: str | None, fraction: float) -> None:
    plan = ServingPlan.model_validate(
        {
            "gpus": [{"id": "gpu0", "memory_gb": 80}],
            "models": [{"name": "v", "framework": "vllm", "gpu": "gpu0", "framework_version": version}],
        }
    )
    assert _gpu(plan)["greedy_gb"] == pytest.approx(fraction * 80)


def test_vllm_weights_above_its_fraction_cannot_start() -> None:
    plan = ServingPlan.model_validate(
        {
            "gpus": [{"id": "gpu0", "product": "L4"}],
            "models": [{"name": "chat", "framework": "vllm", "gpu": "gpu0", "gpu_gb": 16, "memory_fraction": 0.5}],
        }
    )
    (cannot,) = _gpu(plan)["greedy_cannot_start"]
    assert cannot.startswith("chat (16.0 GiB > vllm gpu_memory_utilization 0.5 ×")


def test_vllm_kv_cache_memory_fixes_the_footprint() -> None:
    plan = ServingPlan.model_validate(
        {
            "gpus": [{"id": "gpu0", "memory_gb": 80}],
            "models": [
                {"name": "a", "framework": "vllm", "gpu": "gpu0", "gpu_gb": 16, "kv_cache_gb": 8},
                {"name": "b", "framework": "pytorch", "gpu": "gpu0", "gpu_gb": 4},
            ],
        }
    )
    gpu = _gpu(plan)
    assert (gpu["greedy_gb"], gpu["greedy_default"], gpu["greedy_fraction_sum"]) == (8.0, [], 0.0)


# --- Kubernetes --------------------------------------------------------------------------


def _llmisvc(name: str, args: str) -> str:
    return f"""apiVersion: serving.kserve.io/v1alpha1
kind: LLMInferenceService
metadata:
  name: {name}
  annotations:
    gpuadmit.dev/gpu-pool: l40s-shared
    gpuadmit.dev/gpu-product: L40S
spec:
  replicas: 1
  model:
    uri: hf://Qwen/Qwen2.5-7B-Instruct
    name: Qwen/Qwen2.5-7B-Instruct
  template:
    containers:
      - name: main
        env:
          - name: VLLM_ADDITIONAL_ARGS
            value: "{args}"
        resources:
          limits:
            nvidia.com/gpu: "1"
"""


def test_vllm_additional_args_are_read(tmp_path: Path) -> None:
    text = _llmisvc("chat", "--gpu-memory-utilization 0.4 --max-model-len 8192") + "---\n"
    text += _llmisvc("code", "--gpu-memory-utilization=0.4 --enforce-eager")
    path = _write(tmp_path, {"two-vllm.yaml": text}) / "two-vllm.yaml"
    read = models(path)
    assert {n: m.memory_fraction for n, m in read.items()} == {"chat": 0.4, "code": 0.4}
    report = judge(path)
    assert not only(report, "greedy-allocator")


def test_two_vllm_at_default_through_llminferenceservice_fail(tmp_path: Path) -> None:
    text = _llmisvc("chat", "--max-model-len 8192") + "---\n" + _llmisvc("code", "--enforce-eager")
    path = _write(tmp_path, {"two-vllm.yaml": text}) / "two-vllm.yaml"
    # On the L40S the overflow is one memory-fit error naming both defaults.
    (overflow,) = [f.message for f in only(judge(path), "memory-fit")]
    assert "chat (vllm gpu_memory_utilization 0.92 (default) × 45.0 GiB = 41.4 GiB)" in overflow
    assert "add up to more than 1" in overflow


def test_vllm_version_and_kv_cache_memory_from_a_deployment(tmp_path: Path) -> None:
    text = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: vllm-llama
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.6.3
          command: ["/bin/sh", "-c"]
          args:
            - vllm serve meta-llama/Llama-3.1-8B-Instruct --kv-cache-memory 8G --max-num-seqs 64
          resources:
            limits:
              nvidia.com/gpu: 1
"""
    path = _write(tmp_path, {"d.yaml": text}) / "d.yaml"
    model = models(path)["vllm-llama"]
    # vLLM's human_readable_int: K/M/G/T are powers of 1024, k/m/g/t powers of 1000
    assert (model.framework, model.framework_version, model.kv_cache_gb) == ("vllm", "v0.6.3", 8.0)


HAMI_POD = """apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
    - name: ubuntu-container
      image: ubuntu:22.04
      command: ["bash", "-c", "sleep 86400"]
      resources:
        limits:
          nvidia.com/gpu: 1
          nvidia.com/gpumem-percentage: {pct}
          nvidia.com/gpucores: {cores}
"""


def test_hami_shares_of_40_and_60_percent_fit_one_device(tmp_path: Path) -> None:
    text = HAMI_POD.format(name="pod-a", pct=40, cores=60) + "---\n" + HAMI_POD.format(name="pod-b", pct=60, cores=40)
    path = _write(tmp_path, {"share.yaml": text}) / "share.yaml"
    report = judge(path)
    assert not only(report, "memory-fit") and not only(report, "memory-declared")


def test_hami_shares_over_the_device_fail_without_capacity(tmp_path: Path) -> None:
    text = HAMI_POD.format(name="pod-a", pct=70, cores=50) + "---\n" + HAMI_POD.format(name="pod-b", pct=60, cores=50)
    path = _write(tmp_path, {"share.yaml": text}) / "share.yaml"
    (fit,) = only(judge(path), "memory-fit")
    assert "enforced memory shares add up to 1.30" in fit.message


def test_hami_limits_on_a_known_gpu_are_judged_without_contexts_and_headroom(tmp_path: Path) -> None:
    text = "\n---\n".join(
        HAMI_POD.format(name=n, pct=p, cores=50).replace(
            "spec:\n  containers:", "spec:\n  nodeSelector:\n    nvidia.com/gpu.product: NVIDIA-L4\n  containers:"
        )
        for n, p in (("pod-a", 50), ("pod-b", 50))
    )
    path = _write(tmp_path, {"share.yaml": text}) / "share.yaml"
    report = judge(path)
    assert not only(report, "memory-fit"), [f.message for f in only(report, "memory-fit")]
    (plan,) = report.plans
    assert plan.gpus[0].context_gb == 0.0


def test_hami_replicas_that_do_not_fit_one_device_are_spread(tmp_path: Path) -> None:
    text = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: embed
spec:
  replicas: 4
  template:
    spec:
      containers:
        - name: embed
          image: example/embed:1.0
          resources:
            limits:
              nvidia.com/gpu: 1
              nvidia.com/gpumem-percentage: 50
"""
    path = _write(tmp_path, {"d.yaml": text}) / "d.yaml"
    assert models(path)["embed"].instances == 2
    assert not only(judge(path), "memory-fit")


# --- custom resources ----------------------------------------------------------------------


RAY_SERVICE = """apiVersion: ray.io/v1
kind: RayService
metadata:
  name: qwen-llm
spec:
  serveConfigV2: |
    applications:
    - name: llm_app
      import_path: ray.serve.llm:build_openai_app
      args:
        llm_configs:
          - model_loading_config:
              model_id: qwen
              model_source: Qwen/Qwen2.5-7B-Instruct
            engine_kwargs:
              gpu_memory_utilization: {fraction}
              max_model_len: 8192
            deployment_config:
              num_replicas: 2
  rayClusterConfig:
    rayVersion: 2.46.0
    headGroupSpec:
      rayStartParams: {{}}
      template:
        spec:
          containers:
          - name: ray-head
            image: rayproject/ray-llm:2.46.0-py311-cu124
            resources:
              limits: {{memory: 8Gi}}
    workerGroupSpecs:
    - replicas: 2
      groupName: gpu-group
      rayStartParams: {{}}
      template:
        spec:
          containers:
          - name: llm
            image: rayproject/ray-llm:2.46.0-py311-cu124
            resources:
              limits:
                nvidia.com/gpu: '1'
          nodeSelector:
            nvidia.com/gpu.product: NVIDIA-L4
"""


def test_ray_service_worker_group_is_a_vllm_model_with_its_engine_kwargs(tmp_path: Path) -> None:
    path = _write(tmp_path, {"ray.yaml": RAY_SERVICE.format(fraction=0.85)}) / "ray.yaml"
    read = models(path)
    assert list(read) == ["qwen-llm-gpu-group"]
    worker = read["qwen-llm-gpu-group"]
    assert (worker.framework, worker.memory_fraction) == ("vllm", 0.85)
    assert judge(path).plans[0].gpus[0].capacity_gb is not None


LWS = """apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata:
  name: vllm-multinode
spec:
  replicas: 2
  leaderWorkerTemplate:
    size: 2
    leaderTemplate:
      spec:
        containers:
          - name: vllm-leader
            image: vllm/vllm-openai:latest
            command: ["sh", "-c", "bash /vllm-workspace/examples/online_serving/multi-node-serving.sh leader --ray_cluster_size=$(LWS_GROUP_SIZE); vllm serve meta-llama/Meta-Llama-3.1-405B-Instruct --tensor-parallel-size 8 --pipeline_parallel_size 2 --gpu-memory-utilization 0.85"]
            resources:
              limits:
                nvidia.com/gpu: "8"
    workerTemplate:
      spec:
        containers:
          - name: vllm-worker
            image: vllm/vllm-openai:latest
            command: ["sh", "-c", "bash /vllm-workspace/examples/online_serving/multi-node-serving.sh worker --ray_address=$(LWS_LEADER_ADDRESS)"]
            resources:
              limits:
                nvidia.com/gpu: "8"
"""


def test_leader_worker_set_leader_and_workers_are_read(tmp_path: Path) -> None:
    path = _write(tmp_path, {"lws.yaml": LWS}) / "lws.yaml"
    read = models(path)
    assert set(read) == {"vllm-multinode-leader", "vllm-multinode-worker"}
    assert read["vllm-multinode-leader"].memory_fraction == 0.85
    assert len(read["vllm-multinode-leader"].placed_on) == 8


NIM_SERVICE = """apiVersion: apps.nvidia.com/v1alpha1
kind: NIMService
metadata:
  name: meta-llama3-8b-instruct
spec:
  image:
    repository: nvcr.io/nim/meta/llama3-8b-instruct
    tag: 1.0.3
    pullPolicy: IfNotPresent
  authSecret: ngc-api-secret
  storage:
    nimCache:
      name: meta-llama3-8b-instruct
  replicas: 1
  resources:
    limits:
      nvidia.com/gpu: 1
  expose:
    service:
      type: ClusterIP
      port: 8000
"""


def test_nim_service_is_a_model_alone_on_its_gpu(tmp_path: Path) -> None:
    path = _write(tmp_path, {"nim.yaml": NIM_SERVICE}) / "nim.yaml"
    read = models(path)
    assert read["meta-llama3-8b-instruct"].framework == "nim"
    assert rules(judge(path)) == set()


VLLM_RUNTIME = """apiVersion: production-stack.vllm.ai/v1alpha1
kind: VLLMRuntime
metadata:
  name: llama-runtime
spec:
  model:
    modelURL: "meta-llama/Llama-3.1-8B-Instruct"
    maxNumSeqs: 32
  vllmConfig:
    tensorParallelSize: 1
    gpuMemoryUtilization: "0.7"
  deploymentConfig:
    resources:
      cpu: "4"
      memory: "16Gi"
      gpu: "1"
      gpuType: "nvidia.com/gpu"
    image:
      registry: "docker.io"
      name: "vllm/vllm-openai:v0.8.5"
    replicas: 2
"""


def test_vllm_runtime_fields_become_engine_flags(tmp_path: Path) -> None:
    path = _write(tmp_path, {"rt.yaml": VLLM_RUNTIME}) / "rt.yaml"
    model = models(path)["llama-runtime"]
    assert (model.framework, model.memory_fraction, model.framework_version) == ("vllm", 0.7, "v0.8.5")
    assert model.caps is not None and model.caps["max_batch_size"] == 32


def test_llm_inference_service_prefill_section_is_a_model(tmp_path: Path) -> None:
    text = _llmisvc("pd", "--max-model-len 8192").replace(
        "    gpuadmit.dev/gpu-pool: l40s-shared\n    gpuadmit.dev/gpu-product: L40S\n", "    team: llm\n"
    )
    text += """  prefill:
    replicas: 2
    template:
      containers:
        - name: main
          resources:
            limits:
              nvidia.com/gpu: "1"
"""
    path = _write(tmp_path, {"pd.yaml": text}) / "pd.yaml"
    read = models(path)
    assert set(read) == {"pd", "pd-prefill"}


OTHER_GPU_OBJECT = """apiVersion: nvidia.com/v1alpha1
kind: DynamoGraphDeployment
metadata:
  name: disagg
spec:
  services:
    VllmDecodeWorker:
      replicas: 1
      resources:
        limits:
          gpu: "1"
      extraPodSpec:
        mainContainer:
          image: nvcr.io/nvidia/ai-dynamo/vllm-runtime:0.8.0
"""


def test_an_unknown_object_that_holds_gpus_is_not_passed_in_silence(tmp_path: Path) -> None:
    path = _write(tmp_path, {"dgd.yaml": OTHER_GPU_OBJECT}) / "dgd.yaml"
    (finding,) = only(judge(path), "unjudged-gpu-object")
    assert finding.severity == "warning"
    assert finding.message == "not judged: DynamoGraphDeployment disagg holds GPUs in fields gpuadmit does not read"


def test_an_unknown_object_without_gpus_stays_quiet(tmp_path: Path) -> None:
    text = OTHER_GPU_OBJECT.replace('gpu: "1"', 'cpu: "1"')
    path = _write(tmp_path, {"dgd.yaml": text}) / "dgd.yaml"
    report = judge(path)
    assert report.plans == [] and report.findings == []


KSERVE_MULTI_NODE = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: big-llm}
spec:
  predictor:
    model:
      modelFormat: {name: huggingface}
      resources: {limits: {nvidia.com/gpu: "8"}}
    workerSpec:
      tensorParallelSize: 8
      containers:
        - name: worker
          resources: {limits: {nvidia.com/gpu: "8"}}
"""


def test_kserve_multi_node_workers_are_said_to_be_unjudged(tmp_path: Path) -> None:
    path = _write(tmp_path, {"isvc.yaml": KSERVE_MULTI_NODE}) / "isvc.yaml"
    (finding,) = only(judge(path), "unjudged-gpu-object")
    assert finding.message == "not judged: InferenceService big-llm workerSpec holds GPUs in fields gpuadmit does not read"


def test_an_object_too_deep_to_search_for_gpus_is_reported_not_passed(tmp_path: Path) -> None:
    nested = "      resources: {limits: {cpu: 1}}\n"
    deep = "x: {" * 30 + "nvidia.com/gpu: 1" + "}" * 30
    text = OTHER_GPU_OBJECT.replace('gpu: "1"', 'cpu: "1"').replace(nested, "") + f"  deep: {{{deep}}}\n"
    path = _write(tmp_path, {"dgd.yaml": text}) / "dgd.yaml"
    (finding,) = only(judge(path), "unjudged-gpu-object")
    assert "DynamoGraphDeployment disagg" in finding.message


def test_a_vllm_release_candidate_takes_the_default_of_its_release() -> None:
    from policy.facts import _older_or_same

    assert _older_or_same("0.6.3rc1", "0.6.4") and _older_or_same("v0.6.4.post1", "0.6.4")
    assert not _older_or_same("0.6.5rc1", "0.6.4") and not _older_or_same("latest", "0.6.4")


# --- the real files these shapes come from (skipped where shared/realworld is absent) -----

MORE = REALWORLD / "more"


@needs_realworld
def test_real_ray_service_worker_group_is_judged() -> None:
    read = models(MORE / "kuberay" / "ray-service.high-throughput-llm.yaml")
    (worker,) = read.values()
    assert (worker.framework, worker.placed_on) == ("vllm", ["qwen-35-4b-gpu-group-gpu"])


@needs_realworld
def test_real_vllm_runtime_keeps_its_fraction() -> None:
    (runtime,) = models(MORE / "production-stack" / "vllmruntime-sample.yaml").values()
    assert (runtime.framework, runtime.memory_fraction) == ("vllm", 0.8)


@needs_realworld
def test_real_llminferenceservice_args_from_env_and_prefill() -> None:
    read = models(MORE / "kserve" / "llmisvc-dp-ep-deepseek-r1.yaml")
    assert {m.memory_fraction for m in read.values()} == {0.95}
    assert set(models(MORE / "kserve" / "llmisvc-pd-qwen2-7b-gpu.yaml")) == {
        "qwen2-7b-instruct-pd",
        "qwen2-7b-instruct-pd-prefill",
    }


@needs_realworld
def test_real_hami_sharing_example_fits() -> None:
    report = judge(MORE / "hami" / "use_sharing_card.yaml")
    assert rules(report) == set()


@needs_realworld
def test_real_llm_api_model_is_on_the_gpu() -> None:
    llm = models(MORE / "tensorrtllm_backend" / "llmapi")["tensorrt_llm"]
    assert llm.framework == "tensorrt_llm" and llm.placed_on


@needs_realworld
def test_real_nim_on_four_whole_a100s_passes() -> None:
    assert rules(judge(MORE / "nim" / "llama3-70b-instruct_4xa100_1.0.0.yaml")) == set()


@needs_realworld
def test_real_dynamo_graph_deployment_is_not_judged_in_silence() -> None:
    assert rules(judge(MORE / "nim" / "dynamo-disagg-planner.yaml")) == {("unjudged-gpu-object", None)}

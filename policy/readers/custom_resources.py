"""Custom resources that hold GPUs, read as the pods they create.

Operators turn these objects into pods; where the fields that become the pod are well
known, they are read here as pod templates, with the engine settings the operator
passes on (as flags, the way the operator starts the engine):

- KubeRay `RayCluster` (`spec.headGroupSpec`, `spec.workerGroupSpecs[]`) and
  `RayService` (the same under `spec.rayClusterConfig`). A Ray Serve LLM application
  (`serveConfigV2`: `applications[].args.llm_configs[]`) runs vLLM in the GPU workers,
  with its `engine_kwargs` (`gpu_memory_utilization`, `tensor_parallel_size`,
  `max_num_seqs`, `kv_cache_memory_bytes`).
- LeaderWorkerSet (`spec.leaderWorkerTemplate.leaderTemplate` / `workerTemplate`,
  `size` pods per group, `spec.replicas` groups).
- NVIDIA NIM Operator `NIMService` (`spec.image`, `spec.resources`, `spec.replicas`).
- vLLM production-stack `VLLMRuntime` (`spec.deploymentConfig`, `spec.vllmConfig`,
  `spec.model.maxNumSeqs`).
- KServe `LLMInferenceService` sections beyond `spec.template`: `spec.worker`,
  `spec.prefill.template`, `spec.prefill.worker`.

Any other object that asks for GPUs anywhere in its spec (`nvidia.com/gpu`, MIG or
HAMi resources, `amd.com/gpu`, or a `gpu` count under `resources`) is not judged, and
says so: `holds_gpus` finds it, and the plan lists it under `unjudged`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..yamlio import LineDict, load_documents

#: Resource names that hold a GPU or a share of one.
GPU_RESOURCE_PREFIXES = ("nvidia.com/gpu", "nvidia.com/mig-", "amd.com/gpu", "gpu.intel.com/")
#: How deep `holds_gpus` looks: deeper than any real pod template, bounded against hostile input.
MAX_DEPTH = 24


@dataclass
class PodTemplate:
    """One kind of pod a custom resource creates."""

    suffix: str  # appended to the object's name ("" for the object itself)
    pod: dict[str, Any]  # a pod spec: containers, nodeSelector, affinity, priorityClassName
    replicas: int
    framework: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)


def get_path(data: Any, *path: str) -> Any:
    """`data[path[0]][path[1]]...`, or None where a step is missing or not a mapping."""
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _count(parent: Any, key: str, file: str, where: str, default: int = 1) -> int:
    """The count (replicas, size) at `parent[key]`, `default` when absent.

    Anything but a whole number ≥ 0 (`"4"`, `-1`, `true`, `2.5`) is bad input naming the
    file, the field's line and its path `where`: the operator would refuse it or read
    something else, so no count is guessed for it.
    """
    value = parent.get(key) if isinstance(parent, dict) else None
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        line, column = key_position(parent, key)
        raise InputError(f"expected a whole number ≥ 0, got {value!r}", file=file, line=line, column=column, field=where)
    return value


def key_position(parent: Any, key: str) -> tuple[int | None, int | None]:
    """(line, column) of `key` in `parent` where the reader recorded it, else of `parent`."""
    if isinstance(parent, LineDict):
        if key in parent.key_lines:
            return parent.key_lines[key]
        return parent.line, parent.column
    return None, None


def _template_pod(template: Any) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """A pod template's spec and its annotations."""
    spec = get_path(template, "spec")
    annotations = get_path(template, "metadata", "annotations")
    notes = {str(k): str(v) for k, v in annotations.items()} if isinstance(annotations, dict) else {}
    return (spec if isinstance(spec, dict) else None), notes


def _with_args(pod: dict[str, Any], args: list[str], framework_container: str | None = None) -> dict[str, Any]:
    """The pod with `args` appended to its GPU containers' args (the engine flags an operator adds)."""
    if not args:
        return pod
    containers = []
    for container in pod.get("containers") or []:
        if isinstance(container, dict) and (framework_container is None or container.get("name") == framework_container):
            given = container.get("args")
            existing: list[Any] = given if isinstance(given, list) else []
            container = {**container, "args": [*existing, *args]}
        containers.append(container)
    return {**pod, "containers": containers}


def _flags(settings: dict[str, Any]) -> list[str]:
    """Engine keyword arguments as `vllm serve` flags (`gpu_memory_utilization` -> `--gpu-memory-utilization`)."""
    words: list[str] = []
    for key, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            continue
        words.extend([f"--{str(key).replace('_', '-')}", str(value)])
    return words


# -- KubeRay ------------------------------------------------------------------------------


def _serve_engine_flags(serve_config: Any, file: str) -> tuple[bool, list[str]]:
    """(is a Ray Serve LLM application, the vLLM flags of its first `llm_configs` entry)."""
    if not isinstance(serve_config, str) or "llm_configs" not in serve_config:
        return False, []
    try:
        docs = load_documents(serve_config, file)
    except InputError:
        return True, []
    for doc in docs:
        for app in get_path(doc.data, "applications") or []:
            for llm in get_path(app, "args", "llm_configs") or []:
                kwargs = get_path(llm, "engine_kwargs")
                return True, _flags(kwargs) if isinstance(kwargs, dict) else []
    return True, []


def _ray_cluster(spec: Any, llm: bool, engine_flags: list[str], file: str, where: str) -> list[PodTemplate]:
    templates: list[PodTemplate] = []
    head = get_path(spec, "headGroupSpec", "template")
    pod, notes = _template_pod(head)
    if pod is not None:
        templates.append(PodTemplate("head", _with_args(pod, engine_flags), 1, "vllm" if llm else None, notes))
    for n, group in enumerate(get_path(spec, "workerGroupSpecs") or []):
        if not isinstance(group, dict):
            continue
        pod, notes = _template_pod(group.get("template"))
        if pod is None:
            continue
        at = f"{where}.workerGroupSpecs[{n}]"
        replicas = max(
            _count(group, "replicas", file, f"{at}.replicas"), _count(group, "maxReplicas", file, f"{at}.maxReplicas", 0), 1
        )
        name = str(group.get("groupName") or f"group{len(templates)}")
        templates.append(PodTemplate(name, _with_args(pod, engine_flags), replicas, "vllm" if llm else None, notes))
    return templates


def _ray_service(data: dict[str, Any], file: str) -> list[PodTemplate]:
    llm, engine_flags = _serve_engine_flags(get_path(data, "spec", "serveConfigV2"), file)
    return _ray_cluster(get_path(data, "spec", "rayClusterConfig"), llm, engine_flags, file, "spec.rayClusterConfig")


def _ray_cluster_object(data: dict[str, Any], file: str) -> list[PodTemplate]:
    return _ray_cluster(data.get("spec"), False, [], file, "spec")


# -- LeaderWorkerSet ----------------------------------------------------------------------


def _leader_worker_set(data: dict[str, Any], file: str) -> list[PodTemplate]:
    spec = data.get("spec")
    groups = max(_count(spec, "replicas", file, "spec.replicas"), 1)
    lwt = get_path(spec, "leaderWorkerTemplate")
    size = max(_count(lwt, "size", file, "spec.leaderWorkerTemplate.size"), 1)
    templates: list[PodTemplate] = []
    worker, worker_notes = _template_pod(get_path(lwt, "workerTemplate"))
    leader, leader_notes = _template_pod(get_path(lwt, "leaderTemplate"))
    if leader is not None:
        templates.append(PodTemplate("leader", leader, groups, None, leader_notes))
        if worker is not None and size > 1:
            templates.append(PodTemplate("worker", worker, groups * (size - 1), None, worker_notes))
    elif worker is not None:  # without a leader template every pod of a group is a worker
        templates.append(PodTemplate("", worker, groups * size, None, worker_notes))
    return templates


# -- NIM Operator ---------------------------------------------------------------------------


def _nim_service(data: dict[str, Any], file: str) -> list[PodTemplate]:
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return []
    image = spec.get("image")
    reference = f"{image.get('repository', '')}:{image.get('tag', '')}" if isinstance(image, dict) else str(image or "")
    container: dict[str, Any] = {"name": "nim", "image": reference}
    for key in ("resources", "env", "command", "args"):
        if key in spec:
            container[key] = spec[key]
    pod: dict[str, Any] = {"containers": [container]}
    for key in ("nodeSelector", "affinity", "priorityClassName", "tolerations"):
        if key in spec:
            pod[key] = spec[key]
    hpa = get_path(spec, "scale", "hpa")
    replicas = max(
        _count(spec, "replicas", file, "spec.replicas"), _count(hpa, "maxReplicas", file, "spec.scale.hpa.maxReplicas", 0), 1
    )
    notes = spec.get("annotations")
    return [PodTemplate("", pod, replicas, "nim", {str(k): str(v) for k, v in notes.items()} if isinstance(notes, dict) else {})]


# -- vLLM production-stack ----------------------------------------------------------------


def _vllm_runtime(data: dict[str, Any], file: str) -> list[PodTemplate]:
    spec = data.get("spec")
    deployment = get_path(spec, "deploymentConfig")
    vllm = get_path(spec, "vllmConfig")
    if not isinstance(deployment, dict):
        return []
    found = deployment.get("resources")
    resources: dict[str, Any] = found if isinstance(found, dict) else {}
    gpu_type = str(resources.get("gpuType") or "nvidia.com/gpu")
    limits: dict[str, Any] = {}
    if resources.get("gpu") not in (None, "", 0, "0"):
        limits[gpu_type] = resources["gpu"]
    image = deployment.get("image")
    reference = (
        "/".join(p for p in (str(image.get("registry") or ""), str(image.get("name") or "")) if p)
        if isinstance(image, dict)
        else str(image or "")
    )
    args: list[str] = []
    if isinstance(vllm, dict):
        for key, flag in (
            ("gpuMemoryUtilization", "--gpu-memory-utilization"),
            ("tensorParallelSize", "--tensor-parallel-size"),
            ("maxNumSeqs", "--max-num-seqs"),
        ):
            if vllm.get(key) not in (None, ""):
                args.extend([flag, str(vllm[key])])
        extra = vllm.get("extraArgs")
        if isinstance(extra, list):
            args.extend(str(a) for a in extra if isinstance(a, (str, int, float)))
    seqs = get_path(spec, "model", "maxNumSeqs")
    if seqs not in (None, "") and "--max-num-seqs" not in args:
        args.extend(["--max-num-seqs", str(seqs)])
    container: dict[str, Any] = {"name": "vllm", "image": reference, "args": ["vllm", "serve", *args]}
    if limits:
        container["resources"] = {"limits": limits}
    env = get_path(vllm, "env")
    if isinstance(env, list):
        container["env"] = env
    pod: dict[str, Any] = {"containers": [container]}
    for key in ("nodeSelector", "affinity", "priorityClassName"):
        if key in deployment:
            pod[key] = deployment[key]
    replicas = max(_count(deployment, "replicas", file, "spec.deploymentConfig.replicas"), 1)
    return [PodTemplate("", pod, replicas, "vllm")]


# -- KServe LLMInferenceService -------------------------------------------------------------


def llm_inference_service_parts(spec: Any, file: str) -> list[PodTemplate]:
    """The pods of an LLMInferenceService beyond `spec.template`: multi-node workers and prefill."""
    templates: list[PodTemplate] = []
    if not isinstance(spec, dict):
        return templates
    replicas = max(_count(spec, "replicas", file, "spec.replicas"), 1)
    worker = spec.get("worker")
    if isinstance(worker, dict):
        templates.append(PodTemplate("worker", worker, replicas, "vllm"))
    prefill = spec.get("prefill")
    if isinstance(prefill, dict):
        prefill_replicas = max(_count(prefill, "replicas", file, "spec.prefill.replicas"), 1)
        if isinstance(prefill.get("template"), dict):
            templates.append(PodTemplate("prefill", prefill["template"], prefill_replicas, "vllm"))
        if isinstance(prefill.get("worker"), dict):
            templates.append(PodTemplate("prefill-worker", prefill["worker"], prefill_replicas, "vllm"))
    return templates


#: kind -> reader. A kind is read only with its API group, so a look-alike is not misread.
READERS = {
    ("ray.io", "RayService"): _ray_service,
    ("ray.io", "RayCluster"): _ray_cluster_object,
    ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"): _leader_worker_set,
    ("apps.nvidia.com", "NIMService"): _nim_service,
    ("production-stack.vllm.ai", "VLLMRuntime"): _vllm_runtime,
}


def pod_templates(data: dict[str, Any], file: str) -> list[PodTemplate] | None:
    """The pods a known custom resource creates; None when its kind is not one read here."""
    group = str(data.get("apiVersion") or "").partition("/")[0]
    reader = READERS.get((group, str(data.get("kind"))))
    return reader(data, file) if reader is not None else None


def holds_gpus(data: Any, depth: int = 0) -> bool:
    """True when a GPU resource is asked for anywhere in `data` (a positive count); True too
    past `MAX_DEPTH`, where it stops looking: an object too deep to search is reported, not passed."""
    if depth > MAX_DEPTH:
        return True
    if isinstance(data, dict):
        for key, value in data.items():
            name = str(key)
            if (name.startswith(GPU_RESOURCE_PREFIXES) or name == "gpu") and _positive(value):
                return True
            if isinstance(value, (dict, list)) and holds_gpus(value, depth + 1):
                return True
    elif isinstance(data, list):
        return any(holds_gpus(item, depth + 1) for item in data if isinstance(item, (dict, list)))
    return False


def _positive(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return value > 0
    if isinstance(value, str):
        try:
            return float(value.strip()) > 0
        except ValueError:
            return False
    return False

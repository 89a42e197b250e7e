"""Kubernetes objects to plans: the GPU workloads of one input file, judged together.

Read: Deployments, StatefulSets, ReplicaSets, DaemonSets, Pods, Jobs, CronJobs, KServe
InferenceServices (predictor, transformer, explainer) and LLMInferenceServices, and an
AdmissionReview's object. PriorityClass objects and device-plugin time-slicing
ConfigMaps in the same input inform them. Everything else is skipped.

Each container that requests GPUs is one model (named after its workload; `/container`
is appended when a pod has several). Where it runs:

- **MIG** (`nvidia.com/mig-3g.40gb: 1`): its own GPU with those slices; the model sits
  on the slices.
- **Shared** GPUs: HAMi fractions (`nvidia.com/gpumem` MiB, `gpumem-percentage`,
  `gpucores`), time-slicing (a GFD product label ending `-SHARED` in the node selector,
  the `nvidia.com/gpu.shared` resource, or a time-slicing ConfigMap in the input), or
  the annotations `gpuadmit.dev/gpu-pool: NAME` / `gpuadmit.dev/sharing: mps`. All
  workloads of one pool (same product, or the same pool name) share the pool's GPUs,
  and their replicas count as instances on them: the scheduler may stack every replica
  on one GPU, and that is the case that must fit.
- Otherwise **exclusive** GPUs: each replica gets its own, identical GPUs, so one
  replica is judged (`instances: 1`).

Capacity comes from the GPU product in the node selector (`nvidia.com/gpu.product`,
also in required node affinity; GFD names with the `-SHARED` suffix are found in the
catalog), else a cloud's node label (GKE `cloud.google.com/gke-accelerator: nvidia-l4`,
mapped in the catalog's `node_labels`; GKE's `cloud.google.com/gke-gpu-sharing-strategy`
`time-sharing` is time-slicing and `mps` MPS), or `gpuadmit.dev/gpu-product`; otherwise
it is unknown.

Engine flags in `command`/`args`: vLLM `--gpu-memory-utilization` (fraction of what the
container sees: under a HAMi memory share, of that share), `--max-num-seqs` (batch cap),
`--tensor-parallel-size`; SGLang `--mem-fraction-static`, `--max-running-requests`;
tritonserver `--rate-limit` and `--model-repository` (read when it names a repository
beside the manifest, or `gpuadmit.dev/triton-repository` does, and the caller gave file
access; otherwise a `repository-read` finding says the repository was not read). Each
workload is its own serving process, so a priority orders nothing between workloads:
`priorityClassName` orders scheduling and preemption, not GPU time, and is not read as
a priority (docs/PROTECTION.md). KServe `containerConcurrency` is
`rate_limit.max_concurrency`; `gpuadmit.dev/*` annotations set the rest and win over
everything read.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .. import catalog
from ..closest import did_you_mean
from ..errors import InputError
from ..plan import Gpu, Model, ServingPlan, Waiver
from ..waivers import parse_expires
from ..findings import Finding
from ..source import PlanSource, Position
from ..yamlio import Document, LineDict, LineList, load_documents
from ..unit_slips import unit_hint
from . import custom_resources, flags
from .custom_resources import get_path
from .files import OUTSIDE, Files, not_followed

ANNOTATION_PREFIX = "gpuadmit.dev/"
GPU = "nvidia.com/gpu"
GPU_SHARED = "nvidia.com/gpu.shared"
MIG_PREFIX = "nvidia.com/mig-"
HAMI_MEM = "nvidia.com/gpumem"
HAMI_MEM_PCT = "nvidia.com/gpumem-percentage"
HAMI_CORES = "nvidia.com/gpucores"
PRODUCT_LABEL = catalog.PRODUCT_LABEL
#: GKE's GPU sharing node label: `time-sharing` gives each GPU to several containers.
GKE_SHARING_LABEL = "cloud.google.com/gke-gpu-sharing-strategy"
#: GKE's most containers per shared GPU (`cloud.google.com/gke-max-shared-clients-per-gpu`).
GKE_CLIENTS_LABEL = "cloud.google.com/gke-max-shared-clients-per-gpu"
MEMORY_LABEL = "nvidia.com/gpu.memory"
SHARING_LABEL = "nvidia.com/gpu.sharing-strategy"
REPLICAS_LABEL = "nvidia.com/gpu.replicas"
MIB_PER_GIB = 1024

#: `gpuadmit.dev/<key>` annotations that set a model field: key -> (field path, type).
ANNOTATIONS: dict[str, tuple[str, type]] = {
    "latency-critical": ("latency_critical", bool),
    "sla-ms": ("sla_ms", float),
    "service-ms": ("service_ms", float),
    "gpu-gb": ("gpu_gb", float),
    "priority": ("priority", int),
    "max-rps": ("rate_limit.max_rps", float),
    "max-concurrency": ("rate_limit.max_concurrency", int),
    "max-queue": ("rate_limit.max_queue", int),
    "queue-timeout-ms": ("rate_limit.queue_timeout_ms", float),
    "timeout-action": ("rate_limit.timeout_action", str),
    "max-batch-size": ("caps.max_batch_size", int),
    "compute-pct": ("caps.compute_pct", float),
    "pinned-memory-gb": ("caps.pinned_memory_gb", float),
    "memory-fraction": ("memory_fraction", float),
    "memory-limit-gb": ("memory_limit_gb", float),
    "framework": ("framework", str),
    "server": ("server", str),
}
#: Annotations that shape placement or the plan rather than one field.
OTHER_ANNOTATIONS = {"waive", "gpu-pool", "sharing", "gpu-product", "triton-repository", "plan"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Pod", "Job", "CronJob"}
KSERVE_KINDS = {"InferenceService", "LLMInferenceService"}
#: KServe predictor keys -> framework.
KSERVE_FORMATS = {
    "tensorflow": "tensorflow",
    "pytorch": "pytorch",
    "torchserve": "pytorch",
    "onnx": "onnxruntime",
    "onnxruntime": "onnxruntime",
    "triton": "triton",
    "huggingface": "vllm",
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
}
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def is_object(data: Any) -> bool:
    return isinstance(data, dict) and "apiVersion" in data and "kind" in data


@dataclass
class _Request:
    """What one container asks of the GPUs."""

    gpus: int = 0
    shared_resource: bool = False
    mig: dict[str, int] = field(default_factory=dict)
    mem_mib: float | None = None
    mem_pct: float | None = None
    cores_pct: float | None = None

    @property
    def hami(self) -> bool:
        return self.mem_mib is not None or self.mem_pct is not None or self.cores_pct is not None

    @property
    def wants_gpu(self) -> bool:
        return self.gpus > 0 or bool(self.mig) or self.hami


@dataclass
class _Workload:
    """One GPU container of a workload, with everything around it that shapes the model."""

    name: str
    kind: str
    doc: Document
    container: dict[str, Any]
    request: _Request
    annotations: dict[str, str]
    annotation_lines: dict[str, tuple[int, int]]
    replicas: int
    node_selector: dict[str, str]
    priority_class: str | None
    priority_class_line: tuple[int, int] | None
    framework_hint: str | None = None
    concurrency: int | None = None
    concurrency_line: tuple[int, int] | None = None
    #: Where its GPU is chosen: the GPU product node-selector label (or the nodeSelector).
    selector_line: tuple[int, int] | None = None


@dataclass
class _Context:
    """What the whole input says about all its workloads."""

    file: str
    plan_name: str
    priority_classes: dict[str, int] = field(default_factory=dict)
    default_priority: int | None = None
    time_sliced: dict[str, int] = field(default_factory=dict)  # resource -> replicas per GPU
    findings: list[Finding] = field(default_factory=list)
    #: May model repositories the workloads name be read? None: admission, they are not.
    files: Files | None = None
    #: Objects that hold GPUs in fields no reader knows: (kind, name, line).
    unjudged: list[tuple[str, str, int]] = field(default_factory=list)
    #: GPU nodes in the input (a cluster snapshot): product label -> what their labels say.
    nodes: dict[str, _NodeGpus] = field(default_factory=dict)

    def product(self, named: str | None) -> str | None:
        """The product a workload gets: the one it names, else the only GPU product of the nodes."""
        if named:
            return named
        return next(iter(self.nodes)) if len(self.nodes) == 1 else None


@dataclass
class _NodeGpus:
    """GPU Feature Discovery labels of the nodes of one product."""

    memory_gb: float | None = None
    sharing: str = "none"  # nvidia.com/gpu.sharing-strategy: none | time-slicing | mps
    replicas: int = 0  # nvidia.com/gpu.replicas: time-slicing replicas per GPU


def read_objects(docs: list[Document], file: str, default_name: str = "plan", files: Files | None = None) -> list[PlanSource]:
    """The GPU workloads among `docs` as one plan (none when no object asks for a GPU).

    Without `files`, model repositories the workloads name are not read (admission).
    """
    docs = [unwrap_review(doc) for doc in docs]
    context = _Context(file=file, plan_name=default_name, files=files)
    for doc in docs:
        _learn(doc, context)
    workloads: list[_Workload] = []
    for doc in docs:
        workloads.extend(_workloads(doc, context))
    if not workloads and not context.unjudged:
        return []
    return [_plan(workloads, context)]


@dataclass
class Placement:
    """Where one document's GPU workloads may run, as far as grouping needs to know."""

    #: The shared-GPU pools its workloads join (the same keys `read_objects` pools by).
    pools: list[str] = field(default_factory=list)
    #: The ServingPlan named by `gpuadmit.dev/plan`, for workloads placed on a plan's GPUs, as
    #: `binding_key` writes it: the plan of that name in the workload's own namespace.
    plan: str | None = None
    #: Whether it holds a GPU workload at all.
    gpu: bool = False


def binding_key(namespace: str | None, name: str) -> str:
    """What a `gpuadmit.dev/plan: NAME` binding names: the ServingPlan NAME in the workload's
    own namespace. ServingPlans are namespaced (samples/deploy/01-crd.yaml), so a workload
    never joins another namespace's plan of the same name; no namespace is `default`, where
    `kubectl apply` puts an object that names none (as `policy.domains.identity` reads it)."""
    return f"{namespace or 'default'}/{name}"


def _namespace(doc: Document) -> str | None:
    meta = doc.data.get("metadata") if isinstance(doc.data, dict) else None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    return str(namespace) if namespace else None


def placements(docs: list[Document]) -> list[Placement]:
    """For each document, the pools it shares GPUs in. A document whose annotations
    cannot be read gets an empty placement: read alone, it reports its own error."""
    docs = [unwrap_review(doc) for doc in docs]
    context = _Context(file=docs[0].file if docs else "", plan_name="plan")
    for doc in docs:
        _learn(doc, context)
    result: list[Placement] = []
    for doc in docs:
        placement = Placement()
        unjudged = len(context.unjudged)
        try:
            found = _workloads(doc, context)
            placement.gpu = len(context.unjudged) > unjudged  # an object not judged joins a plan too
            for workload in found:
                placement.gpu = True
                annotations = _gpuadmit_annotations(workload, context)
                named = str(annotations.pop("plan", ""))
                if named and placement.plan is None:
                    placement.plan = binding_key(_namespace(workload.doc), named)
                if workload.request.mig:
                    continue
                product = context.product(annotations.pop("gpu-product", None) or workload.node_selector.get(PRODUCT_LABEL))
                pool = _pool_of(workload, annotations, product, context)
                if pool is not None and pool[0] not in placement.pools:
                    placement.pools.append(pool[0])
        except InputError:
            placement = Placement(gpu=True)
        result.append(placement)
    return result


def unwrap_review(doc: Document) -> Document:
    """An AdmissionReview is judged by the object it carries."""
    data = doc.data
    if isinstance(data, dict) and data.get("kind") == "AdmissionReview":
        request = data.get("request")
        obj = request.get("object") if isinstance(request, dict) else None
        if isinstance(obj, dict) and is_object(obj):
            namespace = request.get("namespace") if isinstance(request, dict) else None
            line = getattr(obj, "line", None) or doc.line
            return Document(_in_namespace(obj, namespace), doc.file, doc.index, line)
    return doc


def _in_namespace(obj: dict[str, Any], namespace: Any) -> dict[str, Any]:
    """The object with the request's namespace in its metadata where it names none (the
    object of a CREATE may leave it out; the API server puts it in the request's), as the
    webhook reads it. Line positions are kept."""
    meta = obj.get("metadata")
    if not isinstance(namespace, str) or not namespace or (isinstance(meta, dict) and meta.get("namespace")):
        return obj
    copied = copy.copy(obj)
    new_meta = copy.copy(meta) if isinstance(meta, dict) else LineDict()
    new_meta["namespace"] = namespace
    copied["metadata"] = new_meta
    return copied


def _learn(doc: Document, context: _Context) -> None:
    """PriorityClasses and time-slicing device-plugin configs."""
    data = doc.data
    if not is_object(data):
        return
    kind = data.get("kind")
    if kind == "PriorityClass":
        name = get_path(data, "metadata", "name")
        value = data.get("value")
        if isinstance(name, str) and isinstance(value, int) and not isinstance(value, bool):
            context.priority_classes[name] = value
            if data.get("globalDefault") is True:
                context.default_priority = value
    elif kind == "ConfigMap" and isinstance(data.get("data"), dict):
        for text in data["data"].values():
            if isinstance(text, str) and "timeSlicing" in text:
                _learn_time_slicing(text, doc.file, context)
    elif kind == "Node":
        _learn_node(data, context)


def _learn_node(data: dict[str, Any], context: _Context) -> None:
    """A GPU node's GFD labels: its product, memory (MiB), and how its GPUs are shared."""
    labels = get_path(data, "metadata", "labels")
    named = catalog.product_from_labels(labels) if isinstance(labels, dict) else None
    if named is None:
        return
    product = named[1]
    node = context.nodes.setdefault(product, _NodeGpus())
    node.memory_gb = node.memory_gb or _label_memory(str(labels.get(MEMORY_LABEL) or ""))
    strategy = str(labels.get(SHARING_LABEL) or "none")
    if strategy != "none":
        node.sharing = strategy
    replicas = str(labels.get(REPLICAS_LABEL) or "")
    if replicas.isdigit() and int(replicas) > 1:
        node.replicas = max(node.replicas, int(replicas))
        if node.sharing == "none":
            node.sharing = "time-slicing"


def _learn_time_slicing(text: str, file: str, context: _Context) -> None:
    try:
        docs = load_documents(text, file)
    except InputError:
        return
    for inner in docs:
        sharing = get_path(inner.data, "sharing", "timeSlicing")
        if not isinstance(sharing, dict):
            continue
        rename = sharing.get("renameByDefault") is True
        for resource in sharing.get("resources") or []:
            if isinstance(resource, dict) and isinstance(resource.get("name"), str):
                name = resource["name"] + (".shared" if rename else "")
                replicas = resource.get("replicas")
                context.time_sliced[name] = replicas if isinstance(replicas, int) and replicas > 0 else 0


def _workloads(doc: Document, context: _Context) -> list[_Workload]:
    data = doc.data
    if not is_object(data):
        return []
    kind = str(data.get("kind"))
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    name = str(meta.get("name") or kind.lower())
    annotations, lines = _annotations(meta)
    if kind in WORKLOAD_KINDS:
        spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
        template: Any = spec
        replicas = 1
        if kind == "CronJob":
            spec = get_path(spec, "jobTemplate", "spec") or {}
        if kind != "Pod":
            template = spec.get("template") if isinstance(spec, dict) else None
            if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
                replicas = _count(spec, "replicas", 1, doc, "spec.replicas")
            elif kind in ("Job", "CronJob"):
                replicas = _count(spec, "parallelism", 1, doc, "spec.parallelism")
            tmeta = get_path(template, "metadata")
            if isinstance(tmeta, dict):
                more, more_lines = _annotations(tmeta)
                annotations, lines = {**annotations, **more}, {**lines, **more_lines}
            pod = get_path(template, "spec")
        else:
            pod = spec
        return _pod_workloads(name, kind, doc, pod, annotations, lines, replicas, None, context)
    if kind == "InferenceService":
        spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
        found: list[_Workload] = []
        workers_reported = False
        for component in ("predictor", "transformer", "explainer"):
            part = spec.get(component)
            if isinstance(part, dict):
                label = name if component == "predictor" else f"{name}-{component}"
                found.extend(_kserve_component(label, doc, part, annotations, lines, context))
                # Multi-node workers (`workerSpec`) are not read: said, never counted as nothing.
                if custom_resources.holds_gpus(part.get("workerSpec")):
                    context.unjudged.append((kind, f"{label} workerSpec", doc.line))
                    workers_reported = True
        if not found and not workers_reported and custom_resources.holds_gpus(spec):
            context.unjudged.append((kind, name, doc.line))
        return found
    if kind == "LLMInferenceService":
        spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
        replicas = _count(spec, "replicas", 1, doc, "spec.replicas")
        found = _pod_workloads(name, kind, doc, spec.get("template"), annotations, lines, replicas, "vllm", context)
        for part in custom_resources.llm_inference_service_parts(spec, doc.file):
            found.extend(
                _pod_workloads(
                    f"{name}-{part.suffix}", kind, doc, part.pod, annotations, lines, part.replicas, part.framework, context
                )
            )
        if not found and custom_resources.holds_gpus(spec):
            context.unjudged.append((kind, name, doc.line))
        return found
    parts = custom_resources.pod_templates(data, doc.file)
    if parts is not None:
        found = []
        for part in parts:
            label = f"{name}-{part.suffix}" if part.suffix else name
            notes = {**annotations, **part.annotations}
            found.extend(_pod_workloads(label, kind, doc, part.pod, notes, lines, part.replicas, part.framework, context))
        if not found and custom_resources.holds_gpus(data.get("spec")):
            context.unjudged.append((kind, name, doc.line))
        return found
    if kind not in KNOWN_WITHOUT_GPUS and custom_resources.holds_gpus(data.get("spec")):
        context.unjudged.append((kind, name, doc.line))
    return []


#: Kinds read elsewhere (or that only describe GPUs): never "not judged".
KNOWN_WITHOUT_GPUS = {"ServingPlan", "Node", "NodeList", "ConfigMap", "PriorityClass", "ClusterServingRuntime", "ServingRuntime"}


def _kserve_component(
    name: str,
    doc: Document,
    part: dict[str, Any],
    annotations: dict[str, str],
    lines: dict[str, tuple[int, int]],
    context: _Context,
) -> list[_Workload]:
    """A KServe component: a `model:`/framework block or `containers:`, plus pod fields beside them."""
    more, more_lines = _annotations(part)
    annotations, lines = {**annotations, **more}, {**lines, **more_lines}
    count_key = "maxReplicas" if part.get("maxReplicas") else "minReplicas"
    replicas = _count(part, count_key, 1, doc, count_key)
    replicas = max(replicas, 1)
    containers: list[tuple[dict[str, Any], str | None]] = []
    for key, value in part.items():
        if isinstance(value, dict) and key not in ("nodeSelector", "annotations", "labels", "affinity", "resources"):
            if key == "model":
                model_format = str(get_path(value, "modelFormat", "name") or "").lower()
                hint = KSERVE_FORMATS.get(model_format, model_format or None)
                words = _words(value)
                if hint == "vllm" and flags.last(flags.flag_values(words), "--backend") == "huggingface":
                    hint = "pytorch"
                containers.append((value, hint))
            elif key in KSERVE_FORMATS:
                containers.append((value, KSERVE_FORMATS[key]))
    for container in part.get("containers") or []:
        if isinstance(container, dict):
            containers.append((container, None))
    pod = {**part, "containers": [c for c, _ in containers]}
    found: list[_Workload] = []
    for workload in _pod_workloads(name, "InferenceService", doc, pod, annotations, lines, replicas, None, context):
        hint = next((h for c, h in containers if c is workload.container), None)
        workload.framework_hint = hint
        concurrency = part.get("containerConcurrency")
        if isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency > 0:
            workload.concurrency = concurrency
            workload.concurrency_line = part.key_lines.get("containerConcurrency") if isinstance(part, LineDict) else None
        found.append(workload)
    return found


def _pod_workloads(
    name: str,
    kind: str,
    doc: Document,
    pod: Any,
    annotations: dict[str, str],
    lines: dict[str, tuple[int, int]],
    replicas: int,
    hint: str | None,
    context: _Context,
) -> list[_Workload]:
    if not isinstance(pod, dict):
        return []
    containers = [c for c in (pod.get("containers") or []) if isinstance(c, dict)]
    # Native sidecars (init containers with `restartPolicy: Always`) run beside the main
    # containers for the pod's whole life, holding their GPUs; other init containers have
    # finished before the main ones start (kubernetes.io, "Sidecar Containers", 1.29+).
    init = pod.get("initContainers")
    containers += [
        c for c in (init if isinstance(init, list) else []) if isinstance(c, dict) and c.get("restartPolicy") == "Always"
    ]
    gpu_containers = [(c, _request(c, doc)) for c in containers]
    gpu_containers = [(c, r) for c, r in gpu_containers if r.wants_gpu]
    selector = (
        {str(k): str(v) for k, v in (pod.get("nodeSelector") or {}).items()} if isinstance(pod.get("nodeSelector"), dict) else {}
    )
    product = _affinity_product(pod.get("affinity"))
    if product and PRODUCT_LABEL not in selector:
        selector[PRODUCT_LABEL] = product
    label = PRODUCT_LABEL  # the label that names the GPU: GPU Feature Discovery's, else a cloud's
    if PRODUCT_LABEL not in selector:
        named = catalog.product_from_labels(selector)
        if named is not None:
            label, selector[PRODUCT_LABEL] = named
    priority_class = pod.get("priorityClassName")
    class_line = pod.key_lines.get("priorityClassName") if isinstance(pod, LineDict) else None
    raw_selector = pod.get("nodeSelector")
    selector_line = (raw_selector.key_lines.get(label) if isinstance(raw_selector, LineDict) else None) or (
        pod.key_lines.get("nodeSelector") if isinstance(pod, LineDict) else None
    )
    result: list[_Workload] = []
    for container, request in gpu_containers:
        label = name if len(gpu_containers) == 1 else f"{name}/{container.get('name', len(result))}"
        result.append(
            _Workload(
                name=label,
                kind=kind,
                doc=doc,
                container=container,
                request=request,
                annotations=annotations,
                annotation_lines=lines,
                replicas=replicas,
                node_selector=selector,
                priority_class=str(priority_class) if priority_class else None,
                priority_class_line=class_line,
                framework_hint=hint,
                selector_line=selector_line,
            )
        )
    return result


def _affinity_product(affinity: Any) -> str | None:
    """A GPU product pinned by required node affinity (`In` with one value) on a product label."""
    terms = get_path(affinity, "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
    for term in terms or []:
        for expression in get_path(term, "matchExpressions") or []:
            if (
                isinstance(expression, dict)
                and expression.get("key") in catalog.product_label_keys()
                and expression.get("operator") == "In"
                and len(expression.get("values") or []) == 1
            ):
                named = catalog.product_from_labels({str(expression["key"]): str(expression["values"][0])})
                return named[1] if named else None
    return None


def _annotations(meta: Any) -> tuple[dict[str, str], dict[str, tuple[int, int]]]:
    raw = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(raw, dict):
        return {}, {}
    lines = dict(raw.key_lines) if isinstance(raw, LineDict) else {}
    return {str(k): str(v) for k, v in raw.items()}, {str(k): v for k, v in lines.items()}


def _request(container: dict[str, Any], doc: Document) -> _Request:
    """GPU resources of a container; limits win over requests (they must match for GPUs)."""
    resources: dict[str, Any] = container["resources"] if isinstance(container.get("resources"), dict) else {}
    merged: dict[str, Any] = {}
    where: dict[str, Any] = {}
    for section in ("requests", "limits"):
        values = resources.get(section)
        if isinstance(values, dict):
            for key, value in values.items():
                merged[str(key)] = value
                where[str(key)] = values
    request = _Request()
    for key, value in merged.items():
        if key in (GPU, GPU_SHARED):
            request.gpus = max(request.gpus, int(_quantity(value, key, where[key], doc, upper=MAX_GPUS)))
            request.shared_resource = request.shared_resource or key == GPU_SHARED
        elif key.startswith(MIG_PREFIX):
            request.mig[key[len(MIG_PREFIX) :]] = int(_quantity(value, key, where[key], doc, upper=MAX_MIG_SLICES))
        elif key == HAMI_MEM:
            request.mem_mib = _quantity(value, key, where[key], doc, upper=MAX_GPU_MIB)
        elif key == HAMI_MEM_PCT:
            request.mem_pct = _quantity(value, key, where[key], doc, upper=100)
        elif key == HAMI_CORES:
            request.cores_pct = _quantity(value, key, where[key], doc, upper=100)
    if request.hami and request.gpus == 0:
        request.gpus = 1  # HAMi defaults to one vGPU when only memory or cores are asked
    return request


#: More GPUs than any node holds, and more memory than any GPU has: a typo, not a plan.
MAX_GPUS = 64
MAX_MIG_SLICES = 7
MAX_GPU_MIB = 4096 * 1024


def _quantity(value: Any, key: str, parent: Any, doc: Document, upper: float | None = None) -> float:
    line, column = parent.key_lines.get(key, (doc.line, 1)) if isinstance(parent, LineDict) else (doc.line, 1)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"expected a whole number, got {value!r}", file=doc.file, line=line, column=column, field=key) from None
    if not math.isfinite(number) or number < 0 or (upper is not None and number > upper) or number != int(number):
        expected = f"a whole number from 0 to {upper:g}" if upper is not None else "a whole number ≥ 0"
        raise InputError(f"expected {expected}, got {value!r}", file=doc.file, line=line, column=column, field=key)
    return number


def _count(parent: Any, key: str, default: int, doc: Document, where: str) -> int:
    """The count at `parent[key]` (replicas, parallelism), `default` when absent; anything but
    a whole number ≥ 0 is bad input naming the field's own line (the document's where the
    reader has none)."""
    value = parent.get(key) if isinstance(parent, dict) else None
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        line, column = custom_resources.key_position(parent, key)
        raise InputError(
            f"expected a whole number ≥ 0, got {value!r}", file=doc.file, line=line or doc.line, column=column, field=where
        )
    return value


# --- from workloads to a plan ------------------------------------------------------------


@dataclass
class _Pool:
    id: str
    sharing: str
    product: str | None
    memory_gb: float | None
    size: int = 1
    line: int = 1
    column: int = 1
    members: list[str] = field(default_factory=list)
    slices: int = 0  # time-slicing replicas per GPU, 0 when unknown
    file: str = ""


def _at(file: str, pos: Position, context: _Context) -> Position:
    """A position in `file`: objects read together may come from several files."""
    return pos if file == context.file or len(pos) > 2 else (pos[0], pos[1], file)


def _plan(workloads: list[_Workload], context: _Context) -> PlanSource:
    gpus: list[Gpu] = []
    models: list[Model] = []
    waivers: list[Waiver] = []
    positions: dict[tuple[Any, ...], Position] = {}
    dialects: dict[tuple[str, Any], str] = {}  # subjects not written in Kubernetes terms
    pools: dict[str, _Pool] = {}
    taken: set[str] = set()
    placed: list[tuple[_Workload, str, list[str], int, dict[str, Any]]] = []
    for workload in workloads:
        name = _unique(workload.name, taken)
        annotations = _gpuadmit_annotations(workload, context)
        if workload.replicas == 0:
            # Scaled to zero (parked, or by an autoscaler): it holds no GPU now, and the scale
            # that brings it back is judged then.
            context.findings.append(
                Finding(
                    rule="schema",
                    severity="info",
                    message=f"{name}: 0 replicas, so it holds no GPU now; scaling it up is judged then",
                    file=workload.doc.file,
                    line=workload.doc.line,
                )
            )
            continue
        product = context.product(annotations.pop("gpu-product", None) or workload.node_selector.get(PRODUCT_LABEL))
        memory_gb = _label_memory(workload.node_selector.get(MEMORY_LABEL))
        if memory_gb is None and product in context.nodes:
            memory_gb = context.nodes[product].memory_gb
        request = workload.request
        line = workload.doc.line
        # GPU findings point at where the GPU is chosen: the node selector's product label.
        where = workload.selector_line or (line, 1)
        if request.mig:
            gpu_id = f"{name}-mig"
            profiles = [p for p, n in sorted(request.mig.items()) for _ in range(n)]
            if len(profiles) > MAX_MIG_SLICES:
                raise InputError(
                    f"{workload.name}: asks for {len(profiles)} MIG slices; a GPU has at most {MAX_MIG_SLICES}",
                    file=workload.doc.file,
                    line=line,
                    field="resources",
                )
            gpus.append(Gpu(id=gpu_id, product=product, sharing="mig", mig=profiles))
            positions[("gpu", gpu_id)] = _at(workload.doc.file, (line, 1), context)
            targets, instances = [f"{gpu_id}:{n}" for n in range(len(profiles))], 1
        else:
            pool = _pool_of(workload, annotations, product, context)
            if pool is None:
                ids = [f"{name}-gpu{n}" if request.gpus > 1 else f"{name}-gpu" for n in range(max(request.gpus, 1))]
                for gpu_id in ids:
                    gpus.append(Gpu(id=gpu_id, product=product, memory_gb=memory_gb, sharing="exclusive"))
                    positions[("gpu", gpu_id)] = _at(workload.doc.file, where, context)
                targets, instances = ids, 1  # replicas run on their own, identical GPUs
            else:
                key, sharing, slices = pool
                if key not in pools:
                    pools[key] = _Pool(
                        _unique(key, taken),
                        sharing,
                        product,
                        memory_gb,
                        line=where[0],
                        column=where[1],
                        slices=slices,
                        file=workload.doc.file,
                    )
                entry = pools[key]
                entry.size = max(entry.size, request.gpus, 1)
                entry.members.append(name)
                targets = [
                    entry.id if request.gpus <= 1 and entry.size == 1 else f"{entry.id}-{n}" for n in range(max(request.gpus, 1))
                ]
                instances = workload.replicas if not entry.slices else min(workload.replicas, entry.slices)
                per_device = _hami_per_device(request, product, memory_gb)
                if per_device is not None:
                    # HAMi places a replica only where its share is free and spreads the others
                    # over the pool's devices: at most this many of them share one GPU.
                    instances = min(instances, per_device)
        placed.append((workload, name, targets, max(instances, 1), annotations))
    # A pool grows to the widest request among its members: a member that was placed on
    # it while it was one GPU wide sits on its first GPU.
    widened = {entry.id: f"{entry.id}-0" for entry in pools.values() if entry.size > 1}
    if widened:
        placed = [(w, n, [widened.get(t, t) for t in targets], i, a) for w, n, targets, i, a in placed]
    for entry in pools.values():
        ids = [entry.id] if entry.size == 1 else [f"{entry.id}-{n}" for n in range(entry.size)]
        for gpu_id in ids:
            gpus.append(
                Gpu.model_validate(
                    {"id": gpu_id, "product": entry.product, "memory_gb": entry.memory_gb, "sharing": entry.sharing}
                )
            )
            positions[("gpu", gpu_id)] = _at(entry.file, (entry.line, entry.column), context)
    capacity = {g.id: _capacity(g) for g in gpus}
    for workload, name, targets, instances, annotations in placed:
        repository = _triton_repository(workload, name, annotations, context)
        if repository is not None:  # tritonserver over a repository beside the manifest
            from . import triton

            words = _words(workload.container)
            found = triton.repository_models(repository, targets, server=name, args=words, plan_name=context.plan_name)
            for model in found.models:
                model = model.model_copy(update={"name": _unique(model.name, taken)}) if model.name in taken else model
                taken.add(model.name)
                models.append(model)
                dialects[("model", model.name)] = "triton"  # its fix hints name config.pbtxt
            positions.update(found.positions)
            context.findings.extend(found.findings)
            continue
        model, model_waivers, lines = _model(workload, name, targets, instances, annotations, capacity, context)
        models.append(model)
        waivers.extend(model_waivers)
        positions[("model", name)] = _at(workload.doc.file, (workload.doc.line, 1), context)
        for field_name, pos in lines.items():
            positions[("model", name, field_name)] = _at(workload.doc.file, pos, context)
    unjudged = [{"kind": kind, "name": obj} for kind, obj, _ in context.unjudged]
    try:
        plan = ServingPlan.model_validate(
            {
                "metadata": {"name": context.plan_name},
                "gpus": gpus,
                "models": models,
                "waivers": waivers,
                "unjudged": unjudged,
            }
        )
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise InputError(f"{'.'.join(map(str, error['loc']))}: {error['msg']}", file=context.file) from None
    starts = [w.doc.line for w in workloads if w.doc.file == context.file] + [n for _, _, n in context.unjudged]
    first_line = min(starts, default=workloads[0].doc.line if workloads else 1)
    source = PlanSource(
        plan=plan, file=context.file, line=first_line, positions=positions, dialect="kubernetes", dialects=dialects
    )
    source.positions[("plan", context.plan_name)] = (first_line, 1)
    source.findings.extend(context.findings)
    return source


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _label_memory(value: str | None) -> float | None:
    try:
        return float(value) / MIB_PER_GIB if value else None
    except ValueError:
        return None


def _capacity(gpu: Gpu) -> float | None:
    if gpu.memory_gb is not None:
        return gpu.memory_gb
    product = catalog.lookup(gpu.product)
    return product.memory_gb if product else None


def _hami_per_device(request: _Request, product: str | None, memory_gb: float | None) -> int | None:
    """How many containers with this HAMi memory share fit on one device (None: not HAMi, or unknown)."""
    if request.mem_pct is not None and request.mem_pct > 0:
        return max(1, int(100 // request.mem_pct))
    if request.mem_mib is not None and request.mem_mib > 0:
        found = catalog.lookup(product) if memory_gb is None else None
        capacity = memory_gb if memory_gb is not None else (found.memory_gb if found else None)
        if capacity is not None:
            return max(1, int(capacity * MIB_PER_GIB // request.mem_mib))
    return None


def _pool_of(
    workload: _Workload, annotations: dict[str, Any], product: str | None, context: _Context
) -> tuple[str, str, int] | None:
    """(pool key, sharing, time-slicing replicas) for a workload on shared GPUs, else None."""
    request = workload.request
    sharing = str(annotations.pop("sharing", "") or "")
    explicit = annotations.pop("gpu-pool", None)
    slices = context.time_sliced.get(GPU_SHARED if request.shared_resource else GPU, 0)
    gke_sharing = workload.node_selector.get(GKE_SHARING_LABEL, "")  # GKE's time-sharing or MPS node pools
    if gke_sharing == "mps":
        sharing = sharing or "mps"
    clients = workload.node_selector.get(GKE_CLIENTS_LABEL, "")
    if gke_sharing and clients.isdigit() and len(clients) <= 3:
        slices = slices or int(clients)
    time_sliced = (
        request.shared_resource
        or (product or "").upper().endswith("-SHARED")
        or gke_sharing == "time-sharing"
        or (GPU_SHARED if request.shared_resource else GPU) in context.time_sliced
    )
    node = context.nodes.get(product or "")
    if node is not None and node.sharing != "none":  # the nodes of this product share their GPUs
        time_sliced = True
        sharing = sharing or ("mps" if node.sharing == "mps" else "")
        slices = slices or node.replicas
    if sharing == "exclusive" and not explicit:
        return None
    if not (explicit or request.hami or time_sliced or sharing in ("time-slicing", "mps")):
        return None
    mode = "mps" if sharing == "mps" else "time-slicing"
    base = (product or "gpu").lower().removesuffix("-shared")
    key = str(explicit) if explicit else f"{'hami' if request.hami else 'shared'}-{base}"
    return key, mode, slices


def _gpuadmit_annotations(workload: _Workload, context: _Context) -> dict[str, Any]:
    """`gpuadmit.dev/*` annotations, typed; an unknown key or bad value is unusable input."""
    result: dict[str, Any] = {}
    for key, raw in workload.annotations.items():
        if not key.startswith(ANNOTATION_PREFIX):
            continue
        name = key[len(ANNOTATION_PREFIX) :]
        line, column = workload.annotation_lines.get(key, (workload.doc.line, 1))
        if name in OTHER_ANNOTATIONS:
            result[name] = raw.strip()
            continue
        if name not in ANNOTATIONS:
            known = [*ANNOTATIONS, *OTHER_ANNOTATIONS]
            raise InputError(
                "unknown gpuadmit annotation" + did_you_mean(name, known, prefix=ANNOTATION_PREFIX),
                file=workload.doc.file,
                line=line,
                column=column,
                field=key,
            )
        _, kind = ANNOTATIONS[name]
        text = raw.strip()
        try:
            if kind is bool:
                if text.lower() not in _TRUE | _FALSE:
                    raise ValueError
                result[name] = text.lower() in _TRUE
            elif kind is int:
                result[name] = int(text)
            elif kind is float:
                result[name] = float(text)
            else:
                result[name] = text.lower() if name in ("timeout-action", "framework") else text
        except ValueError:
            expected = "true or false" if kind is bool else "a number"
            hint = unit_hint(name, raw)  # `gpu-gb: "80GB"`: GiB are a plain number
            raise InputError(
                f"expected {expected}, got {raw!r}{'; ' + hint if hint else ''}",
                file=workload.doc.file,
                line=line,
                column=column,
                field=key,
            ) from None
    return result


#: Environment variables whose value is more engine flags: KServe's vLLM runtimes append
#: `VLLM_ADDITIONAL_ARGS` to the `vllm serve` line they build.
ARGS_ENV = ("VLLM_ADDITIONAL_ARGS",)


def _words(container: dict[str, Any]) -> list[str]:
    words: list[str] = []
    for key in ("command", "args"):
        value = container.get(key) or []
        if not isinstance(value, list):
            raise InputError(f"container {key} must be a list of strings, got {type(value).__name__}", field=key)
        words.extend(str(word) for word in value if isinstance(word, (str, int, float)))
    env = container.get("env")
    for entry in env if isinstance(env, list) else []:
        if isinstance(entry, dict) and entry.get("name") in ARGS_ENV and isinstance(entry.get("value"), str):
            words.append(entry["value"] + " ")  # a shell line: split as the runtime's shell does
    return flags.tokens(words)


def _image_version(container: dict[str, Any]) -> str | None:
    """The release in an image tag (`vllm/vllm-openai:v0.6.3` -> `v0.6.3`), when the tag is one."""
    image = str(container.get("image") or "")
    tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
    tag = tag.partition("@")[0]
    return tag if tag[:1].isdigit() or (tag[:1] in "vV" and tag[1:2].isdigit()) else None


#: vLLM `--kv-cache-memory` takes bytes, with k/m/g/t for powers of 1000 and K/M/G/T for powers of 1024.
_SIZE_SUFFIXES = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _bytes_flag(values: dict[str, list[str]], workload: _Workload, *names: str) -> float | None:
    raw = flags.last(values, *names)
    if raw is None or raw == "":
        return None
    text = raw.strip().removesuffix("iB").removesuffix("B").removesuffix("i")
    scale = _SIZE_SUFFIXES.get(text[-1:], 1.0) if text else 1.0
    number = text[:-1] if text[-1:] in _SIZE_SUFFIXES else text
    try:
        value = float(number) * scale
        if not math.isfinite(value) or value <= 0:
            raise ValueError
        return value
    except ValueError:
        raise InputError(
            f"{names[0]} expects a size in bytes (such as 8G), got {raw!r}",
            file=workload.doc.file,
            line=workload.doc.line,
            field=f"{workload.name}.args",
        ) from None


def _triton_repository(workload: _Workload, model: str, annotations: dict[str, Any], context: _Context) -> Path | None:
    """The local model repository a tritonserver container serves, when it can be read.

    When it is not read, the container is judged as one model from its resources and
    annotations, and a `repository-read` finding says what was not judged: an error for
    the annotation (it asks for the repository's models to be judged), a warning for the
    flag alone (a path inside the container image; in admission, any path).
    """
    words = _words(workload.container)
    if _framework(workload, words) != "triton":
        return None
    annotated = "triton-repository" in annotations
    named = annotations.get("triton-repository") or flags.last(flags.flag_values(words), "--model-repository", "--model-store")
    if not named:
        return None
    file = workload.doc.file
    what = ANNOTATION_PREFIX + "triton-repository" if annotated else "--model-repository"
    line, column = workload.annotation_lines.get(what, (workload.doc.line, 1)) if annotated else (workload.doc.line, 1)
    if context.files is None:
        reason = "admission reads no files"
    else:
        folder = context.files.resolve(file, str(named))
        if not context.files.permits(folder):
            reason = (
                OUTSIDE
                if annotated
                else "no model repository is there inside the folders being linted (the path is inside the container "
                "image, or remote; --files-root adds a folder)"
            )
        elif folder.is_dir() and any((p / "config.pbtxt").is_file() for p in folder.iterdir() if p.is_dir()):
            return folder
        elif annotated:
            raise InputError(f"no Triton model repository at {folder}", file=file, line=line, column=column, field=what)
        else:
            reason = "no model repository is there beside the manifest (the path is inside the container, or remote)"
    context.findings.append(
        not_followed(
            f"{workload.name}: {what}",
            f"{reason}; the container is judged as one model and the repository's models were not judged",
            severity="error" if annotated else "warning",
            file=file,
            line=line,
            column=column,
            plan=context.plan_name,
            model=model,
        )
    )
    return None


def _framework(workload: _Workload, words: list[str]) -> str:
    image = str(workload.container.get("image") or "").lower()
    joined = " ".join(words).lower()
    if "vllm" in joined.split() or "vllm." in joined or "vllm/" in image or "vllm-openai" in image or " vllm " in f" {joined} ":
        return "vllm"
    if "sglang" in joined or "sglang" in image:
        return "sglang"
    if "trtllm-serve" in joined:
        return "tensorrt_llm"
    if "tritonserver" in joined or "tritonserver" in image:
        return "triton"
    if workload.framework_hint:
        return workload.framework_hint
    return "unknown"


def _model(
    workload: _Workload,
    name: str,
    targets: list[str],
    instances: int,
    annotations: dict[str, Any],
    capacity: dict[str, float | None],
    context: _Context,
) -> tuple[Model, list[Waiver], dict[str, Position]]:
    container = workload.container
    words = _words(container)
    values = flags.flag_values(words)
    framework = str(annotations.get("framework") or _framework(workload, words))
    fields: dict[str, Any] = {"name": name, "framework": framework, "instances": instances, "server": name}
    # Each replica is a pod of its own: a process with its own CUDA context.
    fields["instances_share_process"] = False
    fields["gpu" if len(targets) == 1 else "gpus"] = targets[0] if len(targets) == 1 else targets
    lines: dict[str, Position] = {}
    doc_line = (workload.doc.line, 1)

    fraction: float | None = None
    fraction_flag = {"vllm": "--gpu-memory-utilization", "sglang": "--mem-fraction-static"}.get(framework)
    flag_line = _flag_line(workload.container, fraction_flag) if fraction_flag else None
    if flag_line:  # findings about its memory fraction point at the engine flag
        lines["memory_fraction"] = flag_line
    if framework == "vllm":
        fraction = _float_flag(values, workload, "--gpu-memory-utilization", "--gpu_memory_utilization")
        kv_bytes = _bytes_flag(values, workload, "--kv-cache-memory", "--kv-cache-memory-bytes", "--kv_cache_memory_bytes")
        if kv_bytes is not None:
            fields["kv_cache_gb"] = kv_bytes / 2**30
        version = _image_version(container)
        if version is not None:
            fields["framework_version"] = version
        seqs = _float_flag(values, workload, "--max-num-seqs")
        if seqs and seqs >= 1:
            fields.setdefault("caps", {})["max_batch_size"] = int(seqs)
    elif framework == "sglang":
        fraction = _float_flag(values, workload, "--mem-fraction-static")
        running = _float_flag(values, workload, "--max-running-requests")
        if running and running >= 1:
            fields.setdefault("caps", {})["max_batch_size"] = int(running)
    elif framework == "triton" and "--rate-limit" in values:
        fields["rate_limit"] = {"enabled": flags.rate_limit_on(words)}

    # HAMi: the container sees only its share of the GPU; greedy fractions apply to it.
    request = workload.request
    cap = capacity.get(targets[0].partition(":")[0]) if targets else None
    share: float | None = None
    if request.mem_pct is not None:
        share = request.mem_pct / 100.0
    elif request.mem_mib is not None and cap:
        share = min(1.0, request.mem_mib / MIB_PER_GIB / cap)
    limit_gb = request.mem_mib / MIB_PER_GIB if request.mem_mib is not None else (share * cap if share and cap else None)
    if limit_gb is not None:
        fields["memory_limit_gb"] = limit_gb
    if request.mem_mib is not None or request.mem_pct is not None:
        # HAMi enforces the share per container, CUDA context included: a limit, not an estimate.
        fields["memory_limit_enforced"] = True
    if framework in ("vllm", "sglang"):
        if share is not None:
            # The engine sees only its share as the GPU's memory and takes its fraction of that;
            # HAMi holds it to the share whatever the fraction, so the share bounds it.
            fields["memory_fraction"] = (fraction if fraction is not None else 1.0) * share
        elif fraction is not None:
            fields["memory_fraction"] = fraction
        elif limit_gb is not None:
            fields["gpu_gb"] = limit_gb
    elif fraction is not None:
        fields["memory_fraction"] = fraction
    if framework not in ("vllm", "sglang"):
        if limit_gb is not None:
            fields["gpu_gb"] = limit_gb  # HAMi enforces the share as a hard limit
        elif request.mem_pct is not None:
            fields["memory_fraction"] = request.mem_pct / 100.0  # capacity unknown: the share itself is judged
    if request.cores_pct is not None and request.cores_pct > 0:
        fields.setdefault("caps", {})["compute_pct"] = request.cores_pct
    _mps_limits(workload, fields, lines)

    if workload.concurrency is not None:
        fields.setdefault("rate_limit", {})["max_concurrency"] = workload.concurrency
        if workload.concurrency_line:
            lines["rate_limit"] = workload.concurrency_line

    for key, value in annotations.items():
        if key not in ANNOTATIONS:
            continue
        path = ANNOTATIONS[key][0]
        head, _, tail = path.partition(".")
        if tail:
            fields.setdefault(head, {})[tail] = value
        else:
            fields[head] = value
        where = workload.annotation_lines.get(ANNOTATION_PREFIX + key)
        if where:
            lines[head] = where
    try:
        model = Model.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        head = str(error["loc"][0]) if error["loc"] else "name"
        line, column = lines.get(head, doc_line)[:2]
        raise InputError(
            f"{name}: {error['msg']}"
            + (f" (got {error['input']!r})" if not isinstance(error.get("input"), (dict, list)) else ""),
            file=workload.doc.file,
            line=line,
            column=column,
            field=".".join(map(str, error["loc"])),
        ) from None
    waivers = _waivers(workload, name, annotations.get("waive"), context)
    return model, waivers, lines


#: MPS client limits a container may set in its environment (docs/PROTECTION.md).
MPS_THREADS = "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"
MPS_MEMORY = "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"
_MEMORY_LIMIT = {
    "": 1 / 2**30,
    "k": 1 / 2**20,
    "kb": 1 / 2**20,
    "m": 1 / 1024,
    "mb": 1 / 1024,
    "g": 1.0,
    "gb": 1.0,
    "t": 1024.0,
    "tb": 1024.0,
}


def _mps_limits(workload: _Workload, fields: dict[str, Any], lines: dict[str, Position]) -> None:
    """`CUDA_MPS_ACTIVE_THREAD_PERCENTAGE` and `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT` (`0=4G,1=4G`:
    the largest per-device limit) from the container's env, as `caps`."""
    env = workload.container.get("env")
    if not isinstance(env, list):
        return
    for n, item in enumerate(env):
        if not isinstance(item, dict) or item.get("name") not in (MPS_THREADS, MPS_MEMORY):
            continue
        value = str(item.get("value") or "").strip()
        where = env.item_lines[n] if isinstance(env, LineList) and n < len(env.item_lines) else None
        if item["name"] == MPS_THREADS:
            try:
                pct = float(value)
            except ValueError:
                continue  # not a number MPS accepts either; nothing is limited
            if 0 < pct <= 100 and "compute_pct" not in fields.get("caps", {}):
                fields.setdefault("caps", {})["compute_pct"] = pct
        else:
            limits = []
            for part in value.split(","):
                amount = part.partition("=")[2] if "=" in part else part
                match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", amount)
                if match and match.group(2).lower() in _MEMORY_LIMIT:
                    limits.append(float(match.group(1)) * _MEMORY_LIMIT[match.group(2).lower()])
            if limits and max(limits) > 0:
                fields.setdefault("caps", {})["pinned_memory_gb"] = max(limits)
        if where:
            lines["caps"] = where


def _flag_line(container: dict[str, Any], flag: str) -> tuple[int, int] | None:
    """The line of an engine flag (`--flag=V` or `--flag V`) in a container's command or args."""
    for key in ("command", "args"):
        words = container.get(key)
        if not isinstance(words, LineList):
            continue
        for n, word in enumerate(words):
            if isinstance(word, str) and (word == flag or word.startswith(flag + "=")) and n < len(words.item_lines):
                return words.item_lines[n]
    return None


def _float_flag(values: dict[str, list[str]], workload: _Workload, *names: str) -> float | None:
    raw = flags.last(values, *names)
    if raw is None or raw == "":
        return None
    try:
        number = float(raw)
        if not math.isfinite(number):
            raise ValueError
        return number
    except ValueError:
        raise InputError(
            f"{names[0]} expects a number, got {raw!r}",
            file=workload.doc.file,
            line=workload.doc.line,
            field=f"{workload.name}.args",
        ) from None


def _waivers(workload: _Workload, model: str, raw: Any, context: _Context) -> list[Waiver]:
    """`gpuadmit.dev/waive: "<rule>=<reason>; expires=YYYY-MM-DD"`, one waiver per line."""
    if not raw:
        return []
    key = ANNOTATION_PREFIX + "waive"
    line, column = workload.annotation_lines.get(key, (workload.doc.line, 1))
    waivers: list[Waiver] = []
    for entry in str(raw).splitlines():
        if not entry.strip():
            continue
        head, *options = [part.strip() for part in entry.split(";")]
        rule, eq, reason = head.partition("=")
        data: dict[str, Any] = {"rule": rule.strip(), "model": model, "reason": reason.strip()}
        for option in options:
            name, _, value = option.partition("=")
            if name.strip() == "expires":
                try:
                    data["expires"] = parse_expires(value)
                except ValueError as exc:
                    raise InputError(
                        str(exc),
                        file=workload.doc.file,
                        line=line,
                        column=column,
                        field=key,
                    ) from None
            elif option:
                raise InputError(
                    f"unknown waiver option {name.strip()!r}; expected `expires=YYYY-MM-DD`",
                    file=workload.doc.file,
                    line=line,
                    column=column,
                    field=key,
                )
        if not eq or not data["rule"] or not data["reason"]:
            raise InputError(
                'expected "<rule>=<reason>; expires=YYYY-MM-DD"', file=workload.doc.file, line=line, column=column, field=key
            )
        try:
            waivers.append(Waiver.model_validate(data))
        except ValidationError as exc:
            raise InputError(
                exc.errors(include_url=False)[0]["msg"], file=workload.doc.file, line=line, column=column, field=key
            ) from None
    return waivers

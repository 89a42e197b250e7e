"""Triton model repositories to plans.

A repository is a folder of `<model>/config.pbtxt`; every model in it runs in one
tritonserver process (the `server` of its models). What a Triton config cannot hold
comes from a plan: either `gpuadmit.yaml` at the repository root, or any plan with a
`triton:` section that names the repository. Its `gpus` are the GPUs the server sees,
`triton.args` says how tritonserver is started, and its `models` entries, matched by
model name, add `gpu_gb`, `latency_critical`, `sla_ms`, ... . The same values may sit
in a config as `parameters` keyed `gpuadmit.<field>`. The engine only ever sees plain
models: the repository is resolved here.

How a config maps to a model:

- `instance_group`: `count` instances on each listed GPU; no `gpus` is every GPU the
  server sees. `KIND_CPU` uses no GPU memory, except the TensorRT-LLM backend, which
  declares KIND_CPU and runs its engine on the GPUs of its `gpu_device_ids` parameter
  (every visible GPU when unset). `KIND_MODEL` defers to the backend: vLLM uses the
  first `tensor_parallel_size` GPUs of its `model.json`, TensorRT-LLM as above, Python
  and ensembles none, any other backend is assumed on every GPU (the worst case).
  No `instance_group` (or KIND_AUTO) means one instance per GPU for GPU frameworks, the
  Python backend included: Triton makes KIND_AUTO a KIND_GPU group on every visible GPU,
  and the Python backend's preferred group is KIND_GPU. Each Python model instance is a
  stub process of its own (`instances_share_process: false`): a CUDA context each.
- `instance_group[].rate_limiter` (the first group that has one): it acts only on
  instances that declare `resources` (an instance without any never waits, so its
  priority is never weighed) and only when tritonserver runs with
  `--rate-limit=execution_count` (the default is off). Where both hold, its `priority`
  (a weight: priority 2 gets half the scheduling chances of 1; 0 counts as 1) becomes
  the model's priority and its executions wait for their resources, so its
  concurrency is its instance count. A limiter without resources sets nothing, and an
  info finding says why its priority is ignored; when `triton.args` is given without
  `--rate-limit=execution_count`, the limit is recorded as switched off
  (`rate_limit.enabled: false`) and its priority dropped. docs/PROTECTION.md.
- `dynamic_batching`: `priority_levels` (strict priority between requests of this
  model, not between models) becomes `priority_levels`; the queue policy of the
  default priority level (its `priority_queue_policy` entry, else
  `default_queue_policy`) gives `max_queue` (0 = unbounded), `queue_timeout_ms` and
  `timeout_action` (DELAY may wait forever): it is the queue requests that set no
  priority wait in.
- `max_batch_size` > 0 caps the batch. `backend`/`platform` give the framework.
- `parameters`: TensorRT-LLM `kv_cache_free_gpu_mem_fraction` and vLLM
  `gpu_memory_utilization` (in `<version>/model.json`) are `memory_fraction`;
  TensorRT-LLM `max_tokens_in_paged_kv_cache` bounds its KV cache (`kv_cache_tokens`);
  ONNX Runtime `gpu_mem_limit` (bytes) is `memory_limit_gb`; TensorFlow's fraction
  comes from `--backend-config=tensorflow,gpu-memory-fraction=F` in the args, and
  without it (or at 0, the default) TensorFlow grows on demand (`memory_growth`).
- A Python model with a `model.yaml` beside its config (in a version folder or the
  model folder) is TensorRT-LLM's LLM API: its engine runs on the first
  `tensor_parallel_size` GPUs whatever its instance group says (the example declares
  KIND_CPU), with `kv_cache_config.free_gpu_memory_fraction` and `max_tokens`.
- No memory declared: the sizes of the model files in the loaded version folders
  estimate the weights (`gpu_gb_estimated`), and an info finding says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..closest import did_you_mean
from ..errors import InputError
from ..plan import Gpu, Model, ServingPlan, TritonServer
from ..findings import Finding
from ..source import PlanSource, Position
from ..yamlio import load_documents, read_text
from ..unit_slips import unit_hint
from . import flags
from .files import OUTSIDE, Files, not_followed
from .triton_config import ParsedConfig, map_key_line, parse

CONFIG = "config.pbtxt"
OVERLAY_NAMES = ("gpuadmit.yaml", "gpuadmit.yml", "gpuadmit.json")
PARAM_PREFIX = "gpuadmit."
GIB = 2**30

#: `gpuadmit.<key>` parameters: key -> (model field path, type).
GPUADMIT_PARAMS: dict[str, tuple[str, type]] = {
    "gpu_gb": ("gpu_gb", float),
    "latency_critical": ("latency_critical", bool),
    "sla_ms": ("sla_ms", float),
    "service_ms": ("service_ms", float),
    "priority": ("priority", int),
    "max_rps": ("rate_limit.max_rps", float),
    "max_concurrency": ("rate_limit.max_concurrency", int),
    "max_queue": ("rate_limit.max_queue", int),
    "queue_timeout_ms": ("rate_limit.queue_timeout_ms", float),
    "timeout_action": ("rate_limit.timeout_action", str),
    "max_batch_size": ("caps.max_batch_size", int),
    "compute_pct": ("caps.compute_pct", float),
    "pinned_memory_gb": ("caps.pinned_memory_gb", float),
    "memory_fraction": ("memory_fraction", float),
    "memory_limit_gb": ("memory_limit_gb", float),
    "framework": ("framework", str),
    "server": ("server", str),
}
#: Frameworks that place instances on GPUs when the kind is left to Triton (KIND_AUTO, or
#: no instance_group at all). Triton core turns KIND_AUTO into KIND_GPU whenever GPUs are
#: visible (`NormalizeInstanceGroup`, core `src/model_config_utils.cc`), and a config without
#: instance_group takes the backend's preferred group: the Python backend prefers KIND_GPU
#: when built with GPU support (python_backend `src/python_be.cc`,
#: `TRITONBACKEND_GetBackendAttribute`, since PR #181). docs/SOURCES.md.
GPU_FRAMEWORKS = {"pytorch", "onnxruntime", "tensorflow", "tensorrt", "tensorrt_llm", "vllm", "python"}
#: Files that are not weights, left out of the memory estimate.
NOT_WEIGHTS = {".py", ".pyc", ".json", ".txt", ".md", ".yaml", ".yml", ".pbtxt", ".cfg", ".toml", ".sh", ".log"}
#: Model file names Triton looks for when a config names no backend.
DEFAULT_FILES = {
    "model.onnx": "onnxruntime",
    "model.pt": "pytorch",
    "model.plan": "tensorrt",
    "model.graphdef": "tensorflow",
    "model.savedmodel": "tensorflow",
    "model.py": "python",
}
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


#: More GPUs than any node holds: a config asking for more is a typo, not a plan.
MAX_NODE_GPUS = 64


@dataclass
class _Placement:
    """Instances per Triton GPU index; None stands for every GPU the server sees."""

    per_gpu: dict[int | None, int] = field(default_factory=dict)
    #: GPUs one instance spans (tensor parallel): the estimate is split over them.
    span: int = 1

    def add(self, indices: list[int] | None, count: int) -> None:
        for index in indices if indices else [None]:
            self.per_gpu[index] = self.per_gpu.get(index, 0) + count


@dataclass
class _RepoModel:
    """One config, read: model fields without placement, and where they came from."""

    name: str
    file: str
    folder: Path
    fields: dict[str, Any]
    placement: _Placement
    anchor: tuple[int, int]
    lines: dict[str, tuple[int, int]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    weight_folders: list[Path] = field(default_factory=list)


@dataclass
class RepositoryModels:
    """A repository read for one server: plain models, their positions, reader findings."""

    models: list[Model]
    positions: dict[tuple[Any, ...], Position]
    findings: list[Finding]
    #: GPU indices configs name beyond the visible GPUs given (for implicit GPUs).
    gpu_count: int
    #: Every model folder read, placed on a GPU or not (CPU models are left out of `models`).
    read_names: set[str] = field(default_factory=set)


def read(path: Path) -> list[PlanSource]:
    """A repository folder, one model folder, or one config.pbtxt, as a plan."""
    only: set[str] | None = None
    repo = path
    if path.is_file():
        repo, only = path.parent.parent, {path.parent.name}
    elif (path / CONFIG).is_file():
        repo, only = path.parent, {path.name}
    elif not path.is_dir():
        raise InputError("no such file or folder", file=str(path))
    overlay = next((repo / n for n in OVERLAY_NAMES if (repo / n).is_file()), None)
    if overlay is not None and not _inside(overlay, repo.resolve()):
        raise InputError(f"{overlay.name} is a link out of the model repository; it was not read", file=str(overlay))
    if overlay is not None:
        from .native import read_plan_file

        sources = read_plan_file(overlay)
        if len(sources) != 1:
            raise InputError(f"{overlay.name} holds one plan for the repository", file=str(overlay))
        source = sources[0]
        section = source.plan.triton or TritonServer()
        if (overlay.parent / section.repository).resolve() != repo.resolve():
            raise InputError(
                f"triton.repository must be `.` in the repository's own {overlay.name}",
                file=str(overlay),
                field="triton.repository",
            )
        return [expand(source, repo, section, only=only, file=str(path))]
    plan = ServingPlan.model_validate({"metadata": {"name": repo.resolve().name or "triton"}})
    source = PlanSource(plan=plan, file=str(path))
    return [expand(source, repo, TritonServer(), only=only, file=str(path))]


def resolve_plan(source: PlanSource, files: Files | None) -> PlanSource:
    """A plan with a `triton:` section: its repository's models join the plan.

    Without file access (admission) the repository is not read: see `_unread`.
    """
    section = source.plan.triton
    if section is None:
        return source
    line, column = source.positions.get(("plan", source.plan.metadata.name), (source.line or 1, 1))[:2]
    if files is None:
        return _unread(source, line, column, "admission reads no files")
    repo = files.resolve(source.file, section.repository)
    if not files.permits(repo):
        return _unread(source, line, column, OUTSIDE)
    if not repo.is_dir():
        raise InputError(f"no model repository at {repo}", file=source.file, line=line, column=column, field="triton.repository")
    return expand(source, repo, section)


def _unread(source: PlanSource, line: int, column: int, reason: str) -> PlanSource:
    """The plan judged without its repository, and an error that says why (`reason`).

    Its `models` entries without a GPU describe repository models (the configs place
    them): judged alone they would only be reported as unplaced, so they are left out.
    Entries with a GPU run beside the server and are judged as usual.
    """
    plan = source.plan
    beside = [m for m in plan.models if m.placed_on]
    left_out = len(plan.models) - len(beside)
    consequence = f"{reason}, so the repository's models were not judged"
    if left_out:
        consequence += f" (nor the {left_out} `models` entries without a GPU that describe them)"
    result = PlanSource(
        plan=plan.model_copy(update={"triton": None, "models": beside}),
        file=source.file,
        line=source.line,
        positions=source.positions,
        findings=[
            *source.findings,
            not_followed(
                "triton.repository",
                consequence,
                severity="error",
                file=source.file,
                line=line,
                column=column,
                plan=plan.metadata.name,
            ),
        ],
    )
    return result


def expand(
    source: PlanSource,
    repo: Path,
    section: TritonServer,
    *,
    only: set[str] | None = None,
    file: str | None = None,
) -> PlanSource:
    """The plan of `source` with the repository's models merged in, validated again."""
    plan = source.plan
    name = plan.metadata.name
    visible = list(section.gpus) if section.gpus is not None else [g.id for g in plan.gpus]
    server = section.server or f"triton-{repo.resolve().name}"
    overlays = {m.name: m for m in plan.models}
    found = repository_models(repo, visible, server=server, args=section.args, plan_name=name, only=only, overlays=overlays)
    gpus = list(plan.gpus)
    if not plan.gpus and section.gpus is None:
        # No GPUs declared: the GPUs the configs name, of unknown size.
        gpus = [Gpu(id=f"gpu{n}") for n in range(max(found.gpu_count, 1))]
        if not found.models:
            gpus = []
    # Plan models that are not in the repository run beside it (another process); when
    # one config is read alone, they are not part of what is judged.
    repo_names = {m.name.partition("@")[0] for m in found.models} | found.read_names
    plain = [m for m in plan.models if m.name not in repo_names] if only is None else []
    data = plan.model_dump(exclude_unset=True, exclude={"models", "gpus"})
    data["metadata"] = plan.metadata.model_dump()
    data["gpus"] = [g.model_dump(exclude_unset=True) for g in gpus]
    data["models"] = [m.model_dump(exclude_unset=True) for m in [*plain, *found.models]]
    try:
        merged = ServingPlan.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise InputError(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}", file=source.file or str(repo), line=source.line
        ) from None
    result = PlanSource(plan=merged, file=file or source.file or str(repo), line=source.line)
    here = source.file
    for key, pos in source.positions.items():
        if key[0] == "model" and key[1] in repo_names:
            continue  # a repository model's findings point into its config.pbtxt
        result.positions[key] = pos if len(pos) > 2 or here is None else (pos[0], pos[1], here)
    result.positions.update(found.positions)
    result.dialect, result.dialects = source.dialect, dict(source.dialects)
    result.dialects.update({("model", m.name): "triton" for m in found.models})  # fix hints name config.pbtxt
    # A GPU the repository's models run on: its fix hints name config.pbtxt and gpuadmit.yaml.
    result.dialects.update({("gpu", unit): "triton" for m in found.models for unit in m.placed_on})
    result.findings = [*source.findings, *found.findings]
    return result


def repository_models(
    repo: Path,
    visible: list[str],
    *,
    server: str,
    args: list[str] | None = None,
    plan_name: str = "plan",
    only: set[str] | None = None,
    overlays: dict[str, Model] | None = None,
) -> RepositoryModels:
    """Every model of a repository, placed on `visible` (Triton GPU 0 first).

    With no visible GPUs given, index N is placed on `gpuN`. `args` is how tritonserver
    is started (None: unknown). `overlays` are plan models whose set fields override the
    configs' by name.
    """
    words = flags.tokens(args) if args is not None else None
    rate_limit_on = flags.rate_limit_on(words) if words is not None else None
    backend_config = _backend_config(words or [])
    overlays = overlays or {}
    models: list[Model] = []
    positions: dict[tuple[Any, ...], Position] = {}
    findings: list[Finding] = []
    highest = 0
    read_names: set[str] = set()
    folders = sorted(p for p in repo.iterdir() if (p / CONFIG).is_file()) if repo.is_dir() else []
    if not folders:
        raise InputError(f"no <model>/{CONFIG} in this folder: not a Triton model repository", file=str(repo))
    root = repo.resolve()
    for folder in folders:
        if only is not None and folder.name not in only:
            continue
        if not (_inside(folder, root) and _inside(folder / CONFIG, root)):
            # What a repository holds is read inside it: a link out of it (a pull request
            # may add one) is neither read nor quoted in a message.
            findings.append(
                not_followed(
                    f"{folder.name}/{CONFIG}",
                    "it is a link out of the model repository, so the model was not read",
                    severity="error",
                    file=str(folder),
                    line=None,
                    plan=plan_name,
                    model=folder.name,
                )
            )
            continue
        parsed = parse(folder / CONFIG)
        read_names.add(folder.name)
        findings.extend(_issues_as_findings(parsed, folder.name, plan_name))
        if parsed.config is None:
            continue
        read_model = _read_model(folder, parsed, server, rate_limit_on, backend_config, plan_name)
        findings.extend(read_model.findings)
        if not read_model.placement.per_gpu:
            continue  # on the CPU only: no GPU memory, no GPU neighbours
        indices = [i for i in read_model.placement.per_gpu if i is not None]
        highest = max([highest, *(i + 1 for i in indices)])
        for model in _placed_models(read_model, visible, overlays.get(read_model.name), plan_name, findings):
            models.append(model)
            anchor: Position = (read_model.anchor[0], read_model.anchor[1], read_model.file)
            positions[("model", model.name)] = anchor
            for field_name, (line, column) in read_model.lines.items():
                positions[("model", model.name, field_name)] = (line, column, read_model.file)
    return RepositoryModels(models, positions, findings, highest, read_names)


def _backend_config(words: list[str]) -> dict[str, dict[str, str]]:
    """`--backend-config=tensorflow,gpu-memory-fraction=0.4` -> {tensorflow: {...}}."""
    result: dict[str, dict[str, str]] = {}
    for value in flags.flag_values(words).get("--backend-config", []):
        backend, _, setting = value.partition(",")
        key, _, val = setting.partition("=")
        if backend and key:
            result.setdefault(backend.strip(), {})[key.strip()] = val.strip()
    return result


def _issues_as_findings(parsed: ParsedConfig, model: str, plan_name: str) -> list[Finding]:
    findings = [
        Finding(
            rule="schema",
            severity="error" if issue.severity == "error" else "warning",
            message=issue.message,
            model=model,
            file=parsed.file,
            line=issue.line,
            column=issue.column,
            fix="fix config.pbtxt so that Triton loads it",
            plan=plan_name,
        )
        for issue in parsed.issues
    ]
    if parsed.placeholders:
        first: dict[str, int] = {}
        for name, line, _ in parsed.placeholders:
            first.setdefault(name, line)
        shown = ", ".join(f"${{{name}}} (line {line})" for name, line in list(first.items())[:4])
        more = len(first) - 4
        name, line, column = parsed.placeholders[0]
        findings.append(
            Finding(
                rule="schema",
                severity="error",
                message=(
                    f"{model}: unfilled template placeholder{'s' if len(first) > 1 else ''} "
                    f"{shown}{f' and {more} more' if more > 0 else ''}; Triton cannot load a template"
                ),
                model=model,
                file=parsed.file,
                line=line,
                column=column,
                fix="fill every ${...} with its value (the template's fill script) and lint the filled config",
                plan=plan_name,
            )
        )
    return findings


def _read_model(
    folder: Path,
    parsed: ParsedConfig,
    server: str,
    rate_limit_on: bool | None,
    backend_config: dict[str, dict[str, str]],
    plan_name: str,
) -> _RepoModel:
    """Model fields and placement of one parsed config."""
    config: Any = parsed.config
    name = folder.name  # Triton names a model after its folder
    file = parsed.file
    anchor = parsed.line_of("name", "backend", "platform") or (1, 1)
    model = _RepoModel(name, file, folder, {"name": name, "server": server}, _Placement(), anchor)
    lines = model.lines
    versions = _version_folders(folder, config)
    model.weight_folders = versions
    params = _string_parameters(config)

    framework = _framework(config.backend, config.platform, folder, versions, config.default_model_filename)
    engine: dict[str, Any] = {}
    if framework == "python":
        # The Python backend runs each model instance in a stub process of its own (python_backend
        # README, "Multiple Model Instance Support"): a CUDA context per instance, not one per server.
        model.fields["instances_share_process"] = False
        llm_api = _engine_file(folder, versions, model, plan_name, "model.yaml")
        if llm_api is not None:  # TensorRT-LLM's LLM API, served by a Python model
            framework = "tensorrt_llm"
            engine = _llm_api_args(llm_api)
    model.fields["framework"] = framework
    lines["framework"] = parsed.line_of("backend", "platform") or anchor

    # Engine settings the frameworks keep outside the protobuf schema.
    if framework == "vllm":
        engine = _vllm_engine_args(folder, versions, model, plan_name)
        if "gpu_memory_utilization" in engine:
            model.fields["memory_fraction"] = engine["gpu_memory_utilization"]
        if isinstance(engine.get("max_num_seqs"), int) and engine["max_num_seqs"] > 0:
            model.fields.setdefault("caps", {})["max_batch_size"] = engine["max_num_seqs"]
    if framework == "tensorrt_llm" and "kv_cache_free_gpu_mem_fraction" in params:
        model.fields["memory_fraction"] = _number(params, "kv_cache_free_gpu_mem_fraction", parsed, model, plan_name)
        lines["memory_fraction"] = _param_line(parsed, "kv_cache_free_gpu_mem_fraction")
    if framework == "tensorrt_llm" and "max_tokens_in_paged_kv_cache" in params:
        tokens = _number(params, "max_tokens_in_paged_kv_cache", parsed, model, plan_name)
        if tokens is not None and tokens >= 1:
            model.fields["kv_cache_tokens"] = int(tokens)
    if framework == "tensorrt_llm" and engine:
        if "free_gpu_memory_fraction" in engine:
            model.fields["memory_fraction"] = engine["free_gpu_memory_fraction"]
        if "max_tokens" in engine:
            model.fields["kv_cache_tokens"] = engine["max_tokens"]
    if framework == "onnxruntime":
        mem_limit = params.get("gpu_mem_limit") or _accelerator_parameter(config, "gpu_mem_limit")
        if mem_limit is not None:
            raw = _number({"gpu_mem_limit": mem_limit}, "gpu_mem_limit", parsed, model, plan_name)
            if raw is not None:
                model.fields["memory_limit_gb"] = raw / GIB
                lines["memory_limit_gb"] = _param_line(parsed, "gpu_mem_limit")
    if framework == "tensorflow":
        # Triton's TensorFlow backend: `gpu-memory-fraction` reserves that share of the GPU
        # up front; its default 0.0 lets TensorFlow grow on demand (tensorflow_backend README).
        fraction: float | None = None
        setting = backend_config.get("tensorflow", {}).get("gpu-memory-fraction")
        if setting is not None:
            try:
                fraction = float(setting)
            except ValueError:
                fraction = None
        if fraction is not None and 0 < fraction <= 1:
            model.fields["memory_fraction"] = fraction
            model.fields["memory_growth"] = False
        else:
            model.fields["memory_growth"] = True

    # Scheduling: batch cap, rate limiter, queue policy.
    if config.max_batch_size > 0:
        model.fields.setdefault("caps", {})["max_batch_size"] = config.max_batch_size
        lines["caps"] = parsed.line_of("max_batch_size") or anchor
    _place(model, config, framework, params, engine)
    instances = max(model.placement.per_gpu.values(), default=1)
    limit: dict[str, Any] = {}
    limited = [n for n, group in enumerate(config.instance_group) if group.HasField("rate_limiter")]
    if limited:  # the first instance group with a rate limiter speaks for the model
        n = limited[0]
        limiter = config.instance_group[n].rate_limiter
        where: tuple[int, int] = parsed.line_of(f"instance_group[{n}].rate_limiter") or anchor
        priority_line = parsed.line_of(f"instance_group[{n}].rate_limiter.priority")
        if not limiter.resources:
            # Rate limiting gates an instance on its resources; without any it never
            # waits, so there is nothing to weigh its priority against.
            if limiter.priority or priority_line:
                _priority_ignored(model, limiter.priority, priority_line or where, plan_name)
        else:
            limit["max_concurrency"] = max(instances, 1)
            if rate_limit_on is False:
                limit["enabled"] = False
            elif limiter.priority or priority_line:
                model.fields["priority"] = limiter.priority
                lines["priority"] = priority_line or where
            lines["rate_limit"] = where
    if config.HasField("dynamic_batching"):
        if config.dynamic_batching.priority_levels > 0:
            # More levels than any queue could hold apart are as good as a million.
            model.fields["priority_levels"] = min(config.dynamic_batching.priority_levels, 1_000_000)
            lines["priority_levels"] = parsed.line_of("dynamic_batching.priority_levels") or anchor
        policy, policy_line = _queue_policy(config, parsed)
        if policy is not None:
            limit["max_queue"] = policy.max_queue_size
            if policy.default_timeout_microseconds > 0:
                limit["queue_timeout_ms"] = policy.default_timeout_microseconds / 1000.0
            limit["timeout_action"] = "delay" if policy.timeout_action == 1 else "reject"
            lines["rate_limit"] = policy_line or anchor
    if limit:
        model.fields["rate_limit"] = limit

    _apply_gpuadmit_parameters(model, params, parsed, plan_name)
    if model.fields.get("memory_fraction") is not None:
        lines.setdefault("memory_fraction", anchor)
    lines.setdefault("name", anchor)
    return model


def _priority_ignored(model: _RepoModel, priority: int, where: tuple[int, int], plan_name: str) -> None:
    model.findings.append(
        Finding(
            rule="latency-critical-priority",
            severity="info",
            message=(
                f"{model.name}: rate_limiter priority {priority} is never applied: the rate limiter declares no "
                "resources, so Triton never holds this instance back and never weighs its priority"
            ),
            model=model.name,
            file=model.file,
            line=where[0],
            column=where[1],
            fix=(
                'in config.pbtxt give the rate_limiter `resources [ { name: "gpu-slot", count: 1 } ]` shared with '
                "the models it must yield to (or take them over), and start tritonserver with "
                "--rate-limit=execution_count"
            ),
            plan=plan_name,
        )
    )


def _place(model: _RepoModel, config: Any, framework: str, params: dict[str, str], engine: dict[str, Any]) -> None:
    """Where the model's instances run, as Triton GPU indices (see the module docstring)."""
    placement = model.placement
    if framework == "ensemble":
        return
    trtllm_ids = _device_ids(params.get("gpu_device_ids")) if framework == "tensorrt_llm" else None
    if framework == "tensorrt_llm" and trtllm_ids is None and isinstance(engine.get("tensor_parallel_size"), int):
        trtllm_ids = list(range(max(1, min(engine["tensor_parallel_size"], MAX_NODE_GPUS + 1))))  # LLM API
    if framework == "tensorrt_llm":
        placement.span = len(trtllm_ids) if trtllm_ids else 1
    tensor_parallel = engine.get("tensor_parallel_size") if framework == "vllm" else None
    vllm_span = tensor_parallel if isinstance(tensor_parallel, int) and tensor_parallel > 0 else 1
    if vllm_span > MAX_NODE_GPUS:
        raise InputError(
            f"{model.name}: tensor_parallel_size {vllm_span}, but a node has at most {MAX_NODE_GPUS} GPUs",
            file=model.file,
            line=model.anchor[0],
            column=model.anchor[1],
        )
    groups = list(config.instance_group) or [None]
    for group in groups:
        count = (group.count if group is not None else 0) or 1
        kind = group.kind if group is not None else 0  # KIND_AUTO
        gpus = list(group.gpus) if group is not None else []
        if kind == 0:  # KIND_AUTO: Triton picks the GPU when the backend runs there
            kind = 1 if gpus or framework in GPU_FRAMEWORKS else 2
        if framework == "tensorrt_llm":  # runs its engine on GPUs whatever the kind
            placement.add(trtllm_ids, count)
        elif kind == 1:  # KIND_GPU
            placement.add(gpus or None, count)
        elif kind == 3:  # KIND_MODEL: the backend decides
            if framework == "vllm":
                placement.add(list(range(vllm_span)), count)
                placement.span = vllm_span
            elif framework not in {"python", "unknown"}:
                placement.add(None, count)
        # KIND_CPU: no GPU
    # Indices and spans come from the config text: bound them before anything is built per GPU.
    beyond = [i for i in placement.per_gpu if i is not None and not 0 <= i < MAX_NODE_GPUS]
    if beyond or not 1 <= placement.span <= MAX_NODE_GPUS:
        what = f"GPU index {beyond[0]}" if beyond else f"a span of {placement.span} GPUs"
        raise InputError(
            f"{model.name}: {what}, but a node has at most {MAX_NODE_GPUS} GPUs",
            file=model.file,
            line=model.anchor[0],
            column=model.anchor[1],
        )


def _device_ids(value: str | None) -> list[int] | None:
    """TensorRT-LLM `gpu_device_ids`: "0,1" or, one group per instance, "0,1;2,3"."""
    if value is None or "${" in value or not value.strip():
        return None
    ids: list[int] = []
    for part in re.split(r"[;,\s]+", value.strip()):
        if part.isdigit() and len(part) <= 4 and int(part) not in ids:
            ids.append(int(part))
    return ids or None


def _placed_models(
    read_model: _RepoModel, visible: list[str], overlay: Model | None, plan_name: str, findings: list[Finding]
) -> list[Model]:
    """Plain models for one config: one model, or one per GPU when counts differ by GPU."""
    per_index: dict[int, int] = {}
    every = read_model.placement.per_gpu.get(None, 0)
    all_indices = list(range(len(visible))) if visible else [0]
    for index in all_indices:
        if every:
            per_index[index] = per_index.get(index, 0) + every
    for maybe_index, count in read_model.placement.per_gpu.items():
        if maybe_index is not None:
            per_index[maybe_index] = per_index.get(maybe_index, 0) + count

    def gpu_id(index: int) -> str:
        return visible[index] if index < len(visible) else f"gpu{index}"

    counts = set(per_index.values())
    if len(counts) == 1:
        shapes = [(read_model.name, [gpu_id(i) for i in sorted(per_index)], counts.pop())]
    else:
        shapes = [(f"{read_model.name}@{gpu_id(i)}", [gpu_id(i)], c) for i, c in sorted(per_index.items())]
    models: list[Model] = []
    for name, gpus, instances in shapes:
        fields = {**read_model.fields, "name": name, "instances": instances}
        fields["gpu" if len(gpus) == 1 else "gpus"] = gpus[0] if len(gpus) == 1 else gpus
        if overlay is not None:
            fields = _merge(fields, overlay.model_dump(exclude_unset=True))
            fields["name"] = name
        model = _validated(fields, read_model, plan_name, findings)
        if model.gpu_gb is None:
            model = _estimated(model, read_model, plan_name, findings)
        models.append(model)
    return models


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Plan fields win over the config's; nested limits merge key by key."""
    merged = dict(base)
    for key, value in override.items():
        if key in ("gpu", "gpus"):
            merged.pop("gpu", None)
            merged.pop("gpus", None)
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _validated(fields: dict[str, Any], read_model: _RepoModel, plan_name: str, findings: list[Finding]) -> Model:
    """A Model; a value out of range is reported at its line and left out."""
    for _ in range(8):
        try:
            return Model.model_validate(fields)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            top = str(error["loc"][0]) if error["loc"] else "name"
            line, column = read_model.lines.get(top, read_model.anchor)
            findings.append(
                Finding(
                    rule="schema",
                    severity="error",
                    message=f"{read_model.name}: {'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                    + (f" (got {error['input']!r})" if not isinstance(error.get("input"), (dict, list)) else "")
                    + (
                        f"; {hint}"
                        if (hint := unit_hint(str(error["loc"][-1]) if error["loc"] else "", error.get("input")))
                        else ""
                    ),
                    model=read_model.name,
                    file=read_model.file,
                    line=line,
                    column=column,
                    fix="give the gpuadmit.* parameter or plan field a value in range (`gpuadmit schema`)",
                    plan=plan_name,
                )
            )
            if top in ("name", "gpu", "gpus") or top not in fields:
                break
            fields = {k: v for k, v in fields.items() if k != top}
    return Model.model_validate({"name": read_model.name[:253]})


def _estimated(model: Model, read_model: _RepoModel, plan_name: str, findings: list[Finding]) -> Model:
    """Weights from the model files when no memory is declared: an estimate, and said so."""
    if model.framework in ("vllm", "sglang"):
        return model  # their footprint is a fraction of the GPU, known without gpu_gb
    size = sum(_weights_bytes(folder) for folder in read_model.weight_folders)
    if size <= 0:
        return model
    per_gpu = size / max(read_model.placement.span, 1) / GIB
    findings.append(
        Finding(
            rule="memory-declared",
            severity="info",
            message=(
                f"{model.name}: gpu_gb {per_gpu:.2f} GiB is an estimate from the model files "
                f"({size / GIB:.2f} GiB in {', '.join(f.name for f in read_model.weight_folders)}); "
                "activations and caches are not counted"
            ),
            model=model.name,
            file=read_model.file,
            line=read_model.anchor[0],
            column=read_model.anchor[1],
            fix=f"declare the real footprint: `gpuadmit.gpu_gb` in {CONFIG}, or `gpu_gb` in the plan",
            plan=plan_name,
        )
    )
    return model.model_copy(update={"gpu_gb": round(per_gpu, 3), "gpu_gb_estimated": True})


def _inside(path: Path, root: Path) -> bool:
    """Whether `path`, its links followed, lies in `root` (resolved)."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a loop of links
        return False


def _weights_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.suffix.lower() not in NOT_WEIGHTS:
            try:
                total += path.stat().st_size
            except OSError:
                continue
    return total


def _version_folders(folder: Path, config: Any) -> list[Path]:
    """The version folders Triton loads under its version_policy (latest 1 by default)."""
    versions = sorted((int(p.name), p) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
    if not versions:
        return []
    choice = config.version_policy.WhichOneof("policy_choice") if config.HasField("version_policy") else None
    if choice == "all":
        return [p for _, p in versions]
    if choice == "specific":
        wanted = set(config.version_policy.specific.versions)
        return [p for v, p in versions if v in wanted]
    keep = config.version_policy.latest.num_versions if choice == "latest" else 1
    return [p for _, p in versions[-max(keep, 1) :]]


def _framework(backend: str, platform: str, folder: Path, versions: list[Path], default_file: str) -> str:
    name = (backend or platform).strip().lower()
    if name.startswith("tensorflow"):
        return "tensorflow"
    if name:
        return {
            "tensorrtllm": "tensorrt_llm",
            "pytorch_libtorch": "pytorch",
            "onnxruntime_onnx": "onnxruntime",
            "tensorrt_plan": "tensorrt",
            "libtorch": "pytorch",
        }.get(name, name)
    for version in versions:  # Triton infers the backend from the model file
        for file_name, framework in DEFAULT_FILES.items():
            if (version / file_name).exists():
                return framework
        if default_file and default_file.endswith(".onnx"):
            return "onnxruntime"
    return "unknown"


def _string_parameters(config: Any) -> dict[str, str]:
    """Config `parameters`, leaving out values that are still `${...}` placeholders."""
    return {key: value.string_value for key, value in config.parameters.items() if "${" not in value.string_value}


def _accelerator_parameter(config: Any, key: str) -> str | None:
    if not config.HasField("optimization"):
        return None
    for accelerator in config.optimization.execution_accelerators.gpu_execution_accelerator:
        if key in accelerator.parameters:
            return str(accelerator.parameters[key])
    return None


def _param_line(parsed: ParsedConfig, key: str) -> tuple[int, int]:
    return map_key_line(parsed, "parameters", key) or parsed.line_of("parameters") or (1, 1)


def _number(params: dict[str, str], key: str, parsed: ParsedConfig, model: _RepoModel, plan_name: str) -> float | None:
    try:
        return float(params[key])
    except ValueError:
        line, column = _param_line(parsed, key)
        model.findings.append(
            Finding(
                rule="schema",
                severity="error",
                message=f"{model.name}: parameter {key} is not a number (got {params[key]!r})",
                model=model.name,
                file=model.file,
                line=line,
                column=column,
                fix=f"set {key} to a number",
                plan=plan_name,
            )
        )
        return None


def _queue_policy(config: Any, parsed: ParsedConfig) -> tuple[Any | None, tuple[int, int] | None]:
    """The queue policy default requests wait under, and its line (None when none is set)."""
    batching = config.dynamic_batching
    level = batching.default_priority_level
    if batching.priority_levels > 0 and level in batching.priority_queue_policy:
        where = map_key_line(parsed, "dynamic_batching.priority_queue_policy", level)
        return batching.priority_queue_policy[level], where or parsed.line_of("dynamic_batching.priority_queue_policy")
    if batching.HasField("default_queue_policy"):
        return batching.default_queue_policy, parsed.line_of("dynamic_batching.default_queue_policy")
    return None, None


def _llm_api_args(data: dict[str, Any]) -> dict[str, Any]:
    """TensorRT-LLM LLM-API arguments (`model.yaml`): parallelism and the KV cache's bounds."""
    result: dict[str, Any] = {}
    tp = data.get("tensor_parallel_size", 1)
    result["tensor_parallel_size"] = tp if isinstance(tp, int) and not isinstance(tp, bool) and tp > 0 else 1
    kv = data.get("kv_cache_config")
    if isinstance(kv, dict):
        fraction = kv.get("free_gpu_memory_fraction")
        if isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and 0 < fraction <= 1:
            result["free_gpu_memory_fraction"] = float(fraction)
        tokens = kv.get("max_tokens")
        if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0:
            result["max_tokens"] = tokens
    return result


def _engine_file(folder: Path, versions: list[Path], model: _RepoModel, plan_name: str, name: str) -> dict[str, Any] | None:
    """An engine-arguments file (`<version>/NAME`, or NAME beside the config); None when absent."""
    home = folder.resolve()
    for path in [v / name for v in versions] + [folder / name]:
        if not path.is_file():
            continue
        if not _inside(path, home):  # a link out of the model's folder is not read
            model.findings.append(
                not_followed(
                    f"{model.name}: {name}",
                    "it is a link out of the model's folder, so it was not read",
                    severity="warning",
                    file=str(path),
                    line=None,
                    plan=plan_name,
                    model=model.name,
                )
            )
            continue
        try:
            docs = load_documents(read_text(path), str(path))
            data = docs[0].data if docs else None
        except InputError as exc:
            model.findings.append(
                Finding(
                    rule="schema",
                    severity="error",
                    message=f"{model.name}: {name} is not usable: {exc.message}",
                    model=model.name,
                    file=str(path),
                    line=exc.line,
                    fix=f"fix the engine arguments file {name}",
                    plan=plan_name,
                )
            )
            return {}
        return data if isinstance(data, dict) else {}
    return None


def _vllm_engine_args(folder: Path, versions: list[Path], model: _RepoModel, plan_name: str) -> dict[str, Any]:
    """vLLM engine arguments from `<version>/model.json` (or `model.json` beside the config)."""
    data = _engine_file(folder, versions, model, plan_name, "model.json") or {}
    result: dict[str, Any] = {}
    for key in ("gpu_memory_utilization",):
        if isinstance(data.get(key), (int, float)) and not isinstance(data.get(key), bool):
            result[key] = float(data[key])
    for key in ("tensor_parallel_size", "max_num_seqs"):
        if isinstance(data.get(key), int) and not isinstance(data.get(key), bool):
            result[key] = data[key]
    return result


def _apply_gpuadmit_parameters(model: _RepoModel, params: dict[str, str], parsed: ParsedConfig, plan_name: str) -> None:
    """`gpuadmit.<field>` parameters: what Triton's schema has no place for."""
    for key, raw in params.items():
        if not key.startswith(PARAM_PREFIX):
            continue
        name = key[len(PARAM_PREFIX) :].replace("-", "_")
        line, column = _param_line(parsed, key)

        def report(message: str, fix: str) -> None:  # called within this iteration only
            model.findings.append(
                Finding(
                    rule="schema",
                    severity="error",
                    message=f"{model.name}: parameter {key}: {message}",  # noqa: B023
                    model=model.name,
                    file=model.file,
                    line=line,  # noqa: B023
                    column=column,  # noqa: B023
                    fix=fix,
                    plan=plan_name,
                )
            )

        if name not in GPUADMIT_PARAMS:
            report(
                "unknown gpuadmit parameter" + did_you_mean(name, GPUADMIT_PARAMS, prefix=PARAM_PREFIX),
                f"use one of {', '.join(PARAM_PREFIX + k for k in GPUADMIT_PARAMS)}",
            )
            continue
        path, kind = GPUADMIT_PARAMS[name]
        value: Any
        text = raw.strip()
        try:
            if kind is bool:
                if text.lower() not in _TRUE | _FALSE:
                    raise ValueError
                value = text.lower() in _TRUE
            elif kind is int:
                value = int(text)
            elif kind is float:
                value = float(text)
            else:
                value = text.lower() if name == "timeout_action" else text
        except ValueError:
            hint = unit_hint(name, raw)  # `gpuadmit.gpu_gb: "80GB"`: GiB are a plain number
            report(
                f"expected {'true or false' if kind is bool else kind.__name__}, got {raw!r}{'; ' + hint if hint else ''}",
                hint or "fix the value",
            )
            continue
        head, _, tail = path.partition(".")
        if tail:
            model.fields.setdefault(head, {})[tail] = value
        else:
            model.fields[head] = value
        model.lines[head] = (line, column)

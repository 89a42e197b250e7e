"""Suggestions as the user meets them: a diff of a native plan (and `--write`), the place
each change lives in a Triton repository or Kubernetes manifest, JSON for tools."""

from __future__ import annotations

import difflib
import io
import json
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from ..readers import native
from ..yamlio import load_documents, read_text
from .changes import Change
from .planner import PlanSuggestion


def input_kind(suggestion: PlanSuggestion) -> str:
    """native | triton | kubernetes: where the plan's fields live."""
    source = suggestion.source
    if source.file is None:
        return "native"
    path = Path(source.file)
    if path.is_dir() or path.suffix == ".pbtxt" or source.plan.triton is not None:
        return "triton"
    try:
        docs = load_documents(read_text(path), source.file)
    except InputError:
        return "native"
    doc = next((d for d in docs if d.line == source.line), None)
    if doc is not None and native.is_plan(doc.data):
        return "native"
    return "kubernetes"


# -- native plans: edit in place, keeping comments, order and style ------------------------


def edited_text(suggestion: PlanSuggestion) -> tuple[str, str]:
    """(original, edited) text of a native plan's file with the suggestion's changes made."""
    if suggestion.source.file is None:
        raise InputError("the plan has no file to edit")
    return edit_file(suggestion.source.file, [suggestion])


def edit_file(file: str, suggestions: Sequence[PlanSuggestion]) -> tuple[str, str]:
    """(original, edited) text of one native plan file with the changes of its plans made."""
    original = read_text(Path(file))
    if original.lstrip().startswith(("{", "[")) and file.lower().endswith(".json"):
        data = json.loads(original)
        body = data.get("spec", data) if data.get("kind") == "ServingPlan" else data
        for suggestion in suggestions:
            _edit(body, suggestion.changes, file, flow=False)
        return original, json.dumps(data, indent=2) + "\n"
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    mapping, sequence, offset = _indentation(original)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    docs = [d for d in yaml.load_all(original) if d is not None]
    # Each plan is the document that starts on its line in the file as read.
    lines = [d.line for d in load_documents(original, file)]
    for suggestion in suggestions:
        index = lines.index(suggestion.source.line) if suggestion.source.line in lines else 0
        doc = docs[index]
        body = doc["spec"] if doc.get("kind") == "ServingPlan" and "spec" in doc else doc
        _edit(body, suggestion.changes, file, flow=True)
    stream = io.StringIO()
    if len(docs) > 1 or original.lstrip().startswith("---"):
        yaml.explicit_start = original.lstrip().startswith("---")
        yaml.dump_all(docs, stream)
    else:
        yaml.dump(docs[0], stream)
    return original, stream.getvalue()


def _indentation(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) indents as ruamel names them, read from the file's own block style."""
    mapping, offset = 2, 0
    previous: tuple[int, str] | None = None
    found_mapping = found_offset = False
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        if previous is not None and previous[1].endswith(":") and indent > previous[0]:
            if stripped.startswith("- ") and not found_offset:
                offset, found_offset = indent - previous[0], True
            elif not stripped.startswith("- ") and not found_mapping:
                mapping, found_mapping = indent - previous[0], True
        previous = (indent, stripped)
    return mapping, max(mapping, offset + 2), offset


#: The order new keys take in a block, as the plan schema lists them.
_KEY_ORDER = [
    "gpu",
    "instances",
    "memory_fraction",
    "memory_limit_gb",
    "priority",
    "rate_limit.max_rps",
    "rate_limit.max_concurrency",
    "rate_limit.max_queue",
    "rate_limit.queue_timeout_ms",
    "rate_limit.timeout_action",
    "rate_limit.enabled",
    "caps.max_batch_size",
    "caps.compute_pct",
    "sharing",
]


def _edit(body: Any, changes: Sequence[Change], file: str, *, flow: bool) -> None:
    models = {m.get("name"): m for m in body.get("models") or [] if isinstance(m, dict)}
    gpus = {g.get("id"): g for g in body.get("gpus") or [] if isinstance(g, dict)}
    rank = {path: n for n, path in enumerate(_KEY_ORDER)}
    for change in sorted(changes, key=lambda c: rank.get(c.path, len(rank))):
        if change.kind == "model":
            target = models.get(change.name)
        else:
            target = gpus.get(change.name)
            if target is None and ("gpu_gb" in body or "GPU_GB" in body):
                raise InputError(
                    f"{change.name}: cannot write `{change.path}: {change.new}` into the seed form "
                    "(a top-level GPU_GB); declare the GPU under `gpus:` first",
                    file=file,
                )
        if target is None:
            raise InputError(f"{change.kind} {change.name} is not in the file", file=file)
        if change.path == "removed":
            body["models"].remove(target)
            continue
        _set(target, change.path, change.new, flow=flow)
        if change.path == "gpu" and "gpus" in target:
            del target["gpus"]


def _set(target: Any, path: str, value: Any, *, flow: bool) -> None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 100, not 100.0, as people write it
    head, _, tail = path.partition(".")
    if not tail:
        target[head] = value
        return
    block = target.get(head)
    if not isinstance(block, dict):
        block = _mapping(target, flow)
        target[head] = block
    block[tail] = value


def _mapping(parent: Any, flow: bool) -> Any:
    if not flow:
        return {}
    from ruamel.yaml.comments import CommentedMap

    block = CommentedMap()
    # A new block takes its model's style: inline inside a flow mapping (the seed's
    # `{name: ..., ...}`), indented lines inside a block one.
    fa = getattr(parent, "fa", None)
    if fa is not None and fa.flow_style():
        block.fa.set_flow_style()
    else:
        block.fa.set_block_style()
    return block


def unified_diff(suggestion: PlanSuggestion) -> str:
    original, edited = edited_text(suggestion)
    file = suggestion.source.file or "plan"
    return "".join(
        difflib.unified_diff(original.splitlines(keepends=True), edited.splitlines(keepends=True), file, f"{file} (suggested)")
    )


def write(suggestions: Sequence[PlanSuggestion]) -> list[str]:
    """Apply the changes of native plans to their files, each file once; the files written."""
    by_file: dict[str, list[PlanSuggestion]] = {}
    for suggestion in suggestions:
        if suggestion.source.file is not None and suggestion.changes:
            by_file.setdefault(suggestion.source.file, []).append(suggestion)
    for file, plans in by_file.items():
        _, edited = edit_file(file, plans)
        Path(file).write_text(edited, encoding="utf-8")
    return list(by_file)


# -- Triton repositories and Kubernetes manifests: where each change lives ------------------

_TRITON_FRACTION = {
    "tensorrt_llm": 'parameters { key: "kv_cache_free_gpu_mem_fraction" value: { string_value: "{v}" } }',
    "vllm": '<version>/model.json: "gpu_memory_utilization": {v}',
    "tensorflow": "tritonserver --backend-config=tensorflow,gpu-memory-fraction={v}",
}
_K8S_FRACTION = {
    "vllm": "engine flag --gpu-memory-utilization={v}",
    "sglang": "engine flag --mem-fraction-static={v}",
    "tensorrt_llm": 'annotation gpuadmit.dev/memory-fraction: "{v}" (TensorRT-LLM kv_cache_free_gpu_mem_fraction)',
}


def where_triton(change: Change, framework: str) -> str:
    """The `config.pbtxt` field (or server flag) that carries a change in a Triton repository."""
    v = change.new
    path = change.path
    if change.kind == "gpu":
        if path == "sharing" and v == "mps":
            return "node: start the MPS control daemon (nvidia-cuda-mps-control -d) for this GPU before tritonserver"
        return f"gpuadmit.yaml: gpus[{change.name}].{path}: {v}"
    if path == "removed":
        return "remove the model from the repository (or load it on another server)"
    if path == "priority":
        return f"dynamic_batching {{ priority_levels: {max(int(v), 2)} default_priority_level: {v} }}"
    if path == "rate_limit.max_queue":
        return f"dynamic_batching {{ default_queue_policy {{ max_queue_size: {v} }} }}"
    if path == "rate_limit.queue_timeout_ms":
        return f"dynamic_batching {{ default_queue_policy {{ default_timeout_microseconds: {round(float(v) * 1000)} }} }}"
    if path == "rate_limit.timeout_action":
        return "dynamic_batching { default_queue_policy { timeout_action: REJECT } }"
    if path == "rate_limit.enabled":
        return "tritonserver --rate-limit=execution_count (gpuadmit.yaml: triton.args)"
    if path == "rate_limit.max_concurrency":
        return f'parameters {{ key: "gpuadmit.max_concurrency" value: {{ string_value: "{v}" }} }}'
    if path == "rate_limit.max_rps":
        return f'parameters {{ key: "gpuadmit.max_rps" value: {{ string_value: "{v}" }} }}'
    if path == "caps.max_batch_size":
        return f"max_batch_size: {v}"
    if path == "caps.compute_pct":
        return f"tritonserver environment: CUDA_MPS_ACTIVE_THREAD_PERCENTAGE={v:g} (a server of its own under MPS)"
    if path == "instances":
        return f"instance_group [ {{ count: {v} kind: KIND_GPU }} ]"
    if path == "gpu":
        return f"instance_group [ {{ kind: KIND_GPU gpus: [ {v} ] }} ] (the Triton index of {v})"
    if path == "memory_fraction":
        template = _TRITON_FRACTION.get(
            framework, 'parameters { key: "gpuadmit.memory_fraction" value: { string_value: "{v}" } }'
        )
        return template.replace("{v}", f"{v:g}")
    if path == "memory_limit_gb":
        return f'parameters {{ key: "gpu_mem_limit" value: {{ string_value: "{round(float(v) * 2**30)}" }} }}'
    return f'parameters {{ key: "gpuadmit.{path.split(".")[-1]}" value: {{ string_value: "{v}" }} }}'


def where_kubernetes(change: Change, framework: str) -> str:
    """The annotation, engine flag or field that carries a change in a Kubernetes manifest."""
    v = change.new
    path = change.path
    if change.kind == "gpu":
        if path == "sharing":
            return f"annotation gpuadmit.dev/sharing: {v} (and the NVIDIA device plugin's sharing.mps on the node)"
        return f"{path}: {v}"
    if path == "removed":
        return "delete the workload, or schedule it on other GPUs"
    if path == "instances":
        return f"spec.replicas: {v}"
    if path == "gpu":
        return f"annotation gpuadmit.dev/gpu-pool: {v} (or the node selector of that GPU)"
    if path == "memory_fraction":
        return _K8S_FRACTION.get(framework, 'annotation gpuadmit.dev/memory-fraction: "{v}"').replace("{v}", f"{v:g}")
    if path == "caps.compute_pct":
        return f"resources.limits nvidia.com/gpucores: {v:g} (HAMi) or env CUDA_MPS_ACTIVE_THREAD_PERCENTAGE={v:g}"
    if path == "caps.max_batch_size" and framework in ("vllm", "sglang"):
        flag = "--max-num-seqs" if framework == "vllm" else "--max-running-requests"
        return f"engine flag {flag}={v}"
    if path == "rate_limit.enabled":
        return "tritonserver flag --rate-limit=execution_count"
    key = path.split(".")[-1].replace("_", "-")
    if key == "memory-limit-gb":
        return f'annotation gpuadmit.dev/memory-limit-gb: "{v:g}"'
    value = v if not isinstance(v, float) else f"{v:g}"
    return f'annotation gpuadmit.dev/{key}: "{value}"'


def change_location(suggestion: PlanSuggestion, change: Change, kind: str) -> str | None:
    """Where a change lives, for inputs that are not native plans."""
    if kind == "native":
        return None
    framework = ""
    if change.kind == "model":
        model = next((m for m in suggestion.source.plan.models if m.name == change.name), None)
        framework = model.framework if model else ""
    where = where_triton(change, framework) if kind == "triton" else where_kubernetes(change, framework)
    file, line, _ = suggestion.source.locate(change.kind, change.name, change.path.split(".")[0])
    at = f"{file}:{line}" if file and line else (file or "")
    return f"{at}: {where}" if at else where


def _fmt(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_text(suggestions: Sequence[PlanSuggestion]) -> str:
    out: list[str] = []
    for s in suggestions:
        where = s.source.file or "plan"
        header = f"{where} — plan {s.name}"
        if s.status == "safe":
            out.append(f"{header}: already passes every enabled rule; nothing to change\n")
            continue
        if s.status == "impossible":
            out.append(f"{header}: no safe plan\n")
            out.extend(f"  {reason}\n" for reason in s.reasons)
            continue
        kind = input_kind(s)
        out.append(f"{header}: {len(s.changes)} change(s) make it pass every enabled rule\n")
        if kind == "native":
            out.append(unified_diff(s))
        out.append("changes:\n")
        for change in s.changes:
            if change.path == "removed":
                out.append(f"  {change.name}  removed\n")
            else:
                out.append(f"  {change.name}  {change.path}: {_fmt(change.old)} → {_fmt(change.new)}\n")
            location = change_location(s, change, kind)
            if location:
                out.append(f"      in {location}\n")
            out.append(f"      {change.rule}: {change.reason}\n")
            for fixed in change.fixes:
                out.append(f"      fixes {fixed}\n")
        info = s.solver
        if info:
            gap = "proven optimal" if info["status"] == "optimal" else f"gap {100 * info['gap']:.2f} %"
            out.append(
                f"committed {s.input_committed_gb:.1f} → {s.committed_gb:.1f} GiB; solver {info['status']} "
                f"({gap}) in {info['seconds']:.2f} s\n"
            )
        leftover = [f for f in s.findings if not (f.counts and f.severity == "error")]
        for finding in leftover:
            state = "waived" if finding.waived else finding.severity
            out.append(f"  still {state}: {finding.rule}: {finding.message}\n")
    return "".join(out)


def render_json(suggestions: Sequence[PlanSuggestion]) -> str:
    plans = []
    for s in suggestions:
        entry = s.to_dict()
        kind = input_kind(s) if s.status == "changed" else None
        entry["input"] = kind
        if kind is not None and kind != "native":
            for change, data in zip(s.changes, entry["changes"]):
                data["where"] = change_location(s, change, kind)
        plans.append(entry)
    return json.dumps({"plans": plans}, indent=2, default=str) + "\n"

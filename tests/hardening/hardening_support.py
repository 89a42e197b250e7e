"""What the property tests and `bench/fuzz.py` share: input strategies, the invariants
each entry point must keep, and an in-process driver for the admission app.

The invariants, one function per entry point, raise `InvariantBroken` (or let the
uncaught exception through) when gpuadmit misbehaves:

- readers: only `InputError` escapes `load_documents` / `read_documents` / `triton.read`;
- the Linter never raises, and `report.exit_code()` is 0, 1 or 2;
- a schema-invalid plan always exits 2; every finding of a readable plan names a rule
  that exists, a severity, a message and a file;
- the webhook answers 200 with a well-formed AdmissionReview echoing the uid, or 400/413
  with a plain message; a schema-invalid object is never allowed in enforce mode.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

SEVERITIES = {"error", "warning", "info"}


class InvariantBroken(AssertionError):
    """gpuadmit broke one of its promises on this input."""


# --- strategies -----------------------------------------------------------------------------

#: Keys of the plan vocabulary, so random documents hit real code paths often.
PLAN_KEYS = ["apiVersion", "kind", "metadata", "spec", "gpus", "models", "waivers", "gpu_gb", "GPU_GB", "triton"]
GPU_KEYS = ["id", "product", "memory_gb", "sharing", "mig"]
MODEL_KEYS = [
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
    "memory_limit_gb",
    "server",
]
RATE_KEYS = ["max_rps", "max_concurrency", "max_queue", "queue_timeout_ms", "timeout_action", "enabled"]
CAP_KEYS = ["max_batch_size", "compute_pct"]
WAIVER_KEYS = ["rule", "model", "gpu", "reason", "expires"]
PRODUCTS = ["H100-SXM-80GB", "A100-80GB", "A100-40GB", "L4", "T4", "H200", "B200", "nope"]
FRAMEWORKS = ["tensorrt_llm", "vllm", "sglang", "pytorch", "onnxruntime", "tensorflow", "python", "triton", "x"]
SHARING = ["exclusive", "time-slicing", "mps", "mig", "bogus"]
MIG = ["1g.10gb", "3g.40gb", "7g.80gb", "1g.5gb", "2g.20gb", "9g.999gb"]

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
names = st.sampled_from(["gpu0", "gpu1", "chat", "guard", "embed", "gpu0:0", "gpu0:1", ""]) | text
finite = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(
    st.integers(-3, 200),
    st.integers(),
    finite,
    st.floats(0, 1),
    st.sampled_from([0, 1, 0.5, 80, 4096, 4097, -1, 10**400, float("nan"), float("inf"), -float("inf"), 1e308]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, text, names)


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Any JSON-ish value (NaN and huge numbers included)."""
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(text | st.sampled_from(PLAN_KEYS + MODEL_KEYS), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


anything = json_values(8)


def _entry(keys: list[str], good: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A mapping with some of `keys` (right values mostly, random ones sometimes) and maybe an unknown key."""
    value_for = {k: st.one_of(good.get(k, anything), good.get(k, anything), anything) for k in keys}

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys)))
        out = {k: draw(value_for[k]) for k in chosen}
        if draw(st.integers(0, 9)) == 0:
            out[draw(text | st.sampled_from(["latency_critcal", "gpu_mb", "priorty", "spec"]))] = draw(anything)
        return out

    return build()


small = st.integers(0, 8)
fraction = st.floats(0, 1)
rate_limit = _entry(
    RATE_KEYS,
    {
        "max_rps": st.integers(0, 500),
        "max_concurrency": small,
        "max_queue": st.integers(0, 64),
        "queue_timeout_ms": st.integers(0, 1000),
        "timeout_action": st.sampled_from(["reject", "delay", "DELAY", "x"]),
        "enabled": st.booleans(),
    },
)
caps = _entry(CAP_KEYS, {"max_batch_size": st.integers(0, 64), "compute_pct": st.integers(0, 120)})
gpu = _entry(
    GPU_KEYS,
    {
        "id": st.sampled_from(["gpu0", "gpu1", "gpu2"]),
        "product": st.sampled_from(PRODUCTS),
        "memory_gb": st.integers(1, 200),
        "sharing": st.sampled_from(SHARING),
        "mig": st.lists(st.sampled_from(MIG), max_size=4),
    },
)
model = _entry(
    MODEL_KEYS,
    {
        "name": st.sampled_from(["chat", "guard", "embed", "rerank", "a", "b"]),
        "framework": st.sampled_from(FRAMEWORKS),
        "gpu": st.sampled_from(["gpu0", "gpu1", "gpu0:0", "gpu9"]),
        "gpus": st.lists(st.sampled_from(["gpu0", "gpu1"]), max_size=3),
        "instances": small,
        "gpu_gb": st.integers(0, 100) | st.floats(0, 100),
        "latency_critical": st.booleans(),
        "sla_ms": st.integers(1, 1000),
        "priority": st.integers(0, 5),
        "rate_limit": rate_limit,
        "caps": caps,
        "memory_fraction": fraction,
        "memory_limit_gb": st.integers(0, 80),
        "server": st.sampled_from(["s1", "s2"]),
    },
)
waiver = _entry(
    WAIVER_KEYS,
    {
        "rule": st.sampled_from(["bulk-capped", "memory-fit", "nope"]),
        "model": st.sampled_from(["chat", "embed"]),
        "reason": text,
        "expires": st.sampled_from(["2999-01-01", "2000-01-01", "tomorrow"]),
    },
)


@st.composite
def plans(draw: st.DrawFn) -> dict[str, Any]:
    """Near-valid plans: the right keys with random values of random types, unknown keys, missing keys."""
    form = draw(st.sampled_from(["flat", "crd", "seed"]))
    body: dict[str, Any] = {}
    if form == "seed":
        body[draw(st.sampled_from(["gpu_gb", "GPU_GB"]))] = draw(st.integers(1, 200) | anything)
    else:
        body["gpus"] = draw(st.lists(gpu, max_size=3) | anything)
    body["models"] = draw(st.lists(model, max_size=5) | anything)
    if draw(st.booleans()):
        body["waivers"] = draw(st.lists(waiver, max_size=2))
    for key in draw(st.lists(st.sampled_from(list(body)), unique=True, max_size=1)):
        del body[key]  # a missing key now and then
    if draw(st.integers(0, 9)) == 0:
        body[draw(text)] = draw(anything)
    if form == "crd":
        return {"apiVersion": "gpuadmit.dev/v1alpha1", "kind": "ServingPlan", "metadata": {"name": "p"}, "spec": body}
    if form == "flat" and draw(st.booleans()):
        body = {"apiVersion": "gpuadmit.dev/v1alpha1", "kind": "ServingPlan", **body}
    return body


@st.composite
def kubernetes_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Deployments, Pods, ConfigMaps and InferenceServices with random GPU requests, args and annotations."""
    limits = draw(
        st.dictionaries(
            st.sampled_from(["nvidia.com/gpu", "nvidia.com/mig-1g.10gb", "nvidia.com/gpumem", "nvidia.com/gpucores", "cpu"]),
            st.one_of(st.integers(0, 4), st.sampled_from(["1", "2", "x", "1.5", "inf", "nan", "1e400", "-1"]), anything),
            max_size=3,
        )
    )
    flags = draw(
        st.lists(
            st.sampled_from(
                [
                    "--gpu-memory-utilization",
                    "--mem-fraction-static",
                    "--max-num-seqs",
                    "--max-running-requests",
                    "--rate-limit",
                    "--model",
                    "--tensor-parallel-size",
                ]
            )
            | text,
            max_size=4,
        )
    )
    args: list[Any] = []
    for flag in flags:
        args += [flag, draw(st.sampled_from(["0.5", "0.95", "8", "inf", "nan", "-1", "", "1e400", "execution_count"]) | text)]
    if draw(st.integers(0, 9)) == 0:
        args = draw(anything)
    annotations = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "gpuadmit.dev/gpu-gb",
                    "gpuadmit.dev/latency-critical",
                    "gpuadmit.dev/sla-ms",
                    "gpuadmit.dev/priority",
                    "gpuadmit.dev/waive",
                    "gpuadmit.dev/sharing",
                    "gpuadmit.dev/framework",
                    "gpuadmit.dev/nope",
                    "other",
                ]
            ),
            st.sampled_from(["1", "true", "40", "x", "nan", "inf", "-5", "bulk-capped: night"]) | text,
            max_size=3,
        )
    )
    container: dict[str, Any] = {"name": "c", "image": draw(st.sampled_from(["vllm/vllm-openai", "nvcr.io/tritonserver", "x"]))}
    container["args"] = args
    container["resources"] = draw(st.sampled_from([{"limits": limits}, {"requests": limits}, limits, {}]))
    pod_spec: dict[str, Any] = {"containers": [container] * draw(st.integers(1, 2))}
    if draw(st.booleans()):
        pod_spec["priorityClassName"] = draw(st.sampled_from(["high", "low"]) | text)
    meta = {"name": draw(st.sampled_from(["chat", "embed"]) | text), "namespace": "ai", "annotations": annotations}
    kind = draw(st.sampled_from(["Deployment", "StatefulSet", "Pod", "InferenceService", "ConfigMap", "PriorityClass"]))
    if kind == "Pod":
        obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}
    elif kind == "InferenceService":
        obj = {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": kind,
            "metadata": meta,
            "spec": {"predictor": {"model": {**container, "modelFormat": {"name": "huggingface"}}}},
        }
    elif kind == "ConfigMap":
        obj = {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": meta,
            "data": {
                "config.yaml": draw(
                    st.sampled_from(
                        ["sharing:\n  timeSlicing:\n    resources:\n      - {name: nvidia.com/gpu, replicas: 4}\n", "x: [", ""]
                    )
                    | text
                )
            },
        }
    elif kind == "PriorityClass":
        obj = {"apiVersion": "scheduling.k8s.io/v1", "kind": kind, "metadata": meta, "value": draw(numbers)}
    else:
        obj = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {
                "replicas": draw(st.integers(0, 3) | numbers),
                "template": {"metadata": {"annotations": annotations}, "spec": pod_spec},
            },
        }
    return obj


PBTXT_FIELDS = [
    'name: "m"',
    'backend: "onnxruntime"',
    'backend: "vllm"',
    'backend: "tensorrtllm"',
    'platform: "pytorch_libtorch"',
    "max_batch_size: 8",
    "max_batch_size: -1",
    "max_batch_size: 99999999999999999999",
    "instance_group [{ kind: KIND_GPU, count: 2, gpus: [0, 1] }]",
    "instance_group [{ kind: KIND_CPU }]",
    'instance_group [{ count: 1, rate_limiter { resources [{ name: "R", count: 1 }] priority: 2 } }]',
    "dynamic_batching { max_queue_delay_microseconds: 100 }",
    "dynamic_batching { priority_levels: 2 default_priority_level: 1 default_queue_policy { max_queue_size: 0 timeout_action: DELAY default_timeout_microseconds: 100000 } }",
    'parameters { key: "gpuadmit.gpu_gb" value { string_value: "4" } }',
    'parameters { key: "gpuadmit.latency_critical" value { string_value: "true" } }',
    'parameters { key: "gpuadmit.priority" value { string_value: "nan" } }',
    'parameters { key: "kv_cache_free_gpu_mem_fraction" value { string_value: "0.9" } }',
    'parameters { key: "gpu_device_ids" value { string_value: "0,1,x" } }',
    'parameters { key: "gpuadmit.sla_ms" value { string_value: "${SLA}" } }',
    "version_policy { specific { versions: [1, 2] } }",
    "# a comment",
    "}",
    "{",
    "[",
    '"',
    "instance_group [",
    "\\",
]


PBTXT_SINGLE = {
    "backend": [
        'backend: "onnxruntime"',
        'backend: "vllm"',
        'backend: "tensorrtllm"',
        'backend: "python"',
        'backend: "pytorch"',
        'backend: "x"',
    ],
    "platform": ['platform: "pytorch_libtorch"', 'platform: "onnxruntime_onnx"', 'platform: "ensemble"'],
    "max_batch_size": ["max_batch_size: 8", "max_batch_size: 0", "max_batch_size: -1", "max_batch_size: 2147483647"],
    "instance_group": [
        "instance_group [{ kind: KIND_GPU, count: 2, gpus: [0, 1] }]",
        "instance_group [{ kind: KIND_CPU }]",
        "instance_group [{ kind: KIND_MODEL }]",
        "instance_group [{ count: 0 }]",
        "instance_group [{ kind: KIND_GPU, gpus: [7] }]",
        'instance_group [{ count: 1, rate_limiter { resources [{ name: "R", count: 1 }] priority: 2 } }]',
        "instance_group [{ count: 1, rate_limiter { priority: 0 } }, { kind: KIND_GPU, count: 3, gpus: [1] }]",
    ],
    "dynamic_batching": [
        "dynamic_batching { max_queue_delay_microseconds: 100 }",
        "dynamic_batching { priority_levels: 2 default_priority_level: 1 default_queue_policy { max_queue_size: 0 timeout_action: DELAY default_timeout_microseconds: 100000 } }",
        "dynamic_batching { default_queue_policy { max_queue_size: 16 timeout_action: REJECT default_timeout_microseconds: 18446744073709551615 } }",
        "dynamic_batching { priority_levels: 2 priority_queue_policy { key: 1 value { max_queue_size: 4 } } }",
    ],
    "version_policy": [
        "version_policy { specific { versions: [1, 2] } }",
        "version_policy { latest { num_versions: 0 } }",
        "version_policy { all {} }",
    ],
}
PBTXT_PARAMETERS = [
    "gpuadmit.gpu_gb",
    "gpuadmit.latency_critical",
    "gpuadmit.priority",
    "gpuadmit.sla_ms",
    "gpuadmit.max_queue",
    "gpuadmit.timeout_action",
    "gpuadmit.framework",
    "gpuadmit.memory_fraction",
    "gpuadmit.nope",
    "kv_cache_free_gpu_mem_fraction",
    "gpu_memory_utilization",
    "gpu_device_ids",
    "gpu_mem_limit",
]
PBTXT_VALUES = ["4", "true", "nan", "inf", "-1", "0.9", "1e400", "${SLA}", "0,1,x", "", "reject", "99999999999999999999999"]
PBTXT_JUNK = ["}", "{", "[", '"', "instance_group [", "\\", "# a comment", "unknown_field: 1", "max_batch_size: x"]


@st.composite
def pbtxt_texts(draw: st.DrawFn) -> str:
    """config.pbtxt texts: mostly well-formed (each field at most once, any parameters), now and then broken."""
    parts = ['name: "m"'] if draw(st.integers(0, 4)) else []
    for field_name in draw(st.lists(st.sampled_from(sorted(PBTXT_SINGLE)), unique=True, max_size=len(PBTXT_SINGLE))):
        parts.append(draw(st.sampled_from(PBTXT_SINGLE[field_name])))
    for key in draw(st.lists(st.sampled_from(PBTXT_PARAMETERS), unique=True, max_size=4)):
        value = draw(st.sampled_from(PBTXT_VALUES) | text.map(lambda t: t.replace("\\", "").replace('"', "")))
        parts.append(f'parameters {{ key: "{key}" value {{ string_value: "{value}" }} }}')
    if draw(st.integers(0, 5)) == 0:
        parts.insert(draw(st.integers(0, len(parts))), draw(st.sampled_from(PBTXT_JUNK) | text))
    parts = draw(st.permutations(parts))
    return draw(st.sampled_from(["\n", " ", "\r\n", "\t"])).join(parts)


@st.composite
def triton_overlays(draw: st.DrawFn) -> dict[str, Any]:
    """A repository's `gpuadmit.yaml`: GPUs, a `triton:` section and model overrides matched by name."""
    good_gpus = st.lists(
        st.builds(lambda n, mem: {"id": f"gpu{n}", "memory_gb": mem}, st.integers(0, 2), st.integers(8, 192)),
        max_size=2,
        unique_by=lambda g: g["id"],
    )
    overlay: dict[str, Any] = {"gpus": draw(good_gpus | good_gpus | st.lists(gpu, max_size=2) | anything)}
    overlay["triton"] = draw(
        _entry(
            ["repository", "server", "args", "gpus"],
            {
                "repository": st.sampled_from([".", ".", ".", "..", "nope", ""]),
                "args": st.lists(
                    st.sampled_from(
                        [
                            "--rate-limit=execution_count",
                            "--rate-limit",
                            "execution_count",
                            "off",
                            "--backend-config=tensorflow,per-process-gpu-memory-fraction=0.4",
                            "--backend-config=tensorflow,per-process-gpu-memory-fraction=nan",
                            "--backend-config=",
                            "--model-repository=/m",
                        ]
                    )
                    | text,
                    max_size=4,
                ),
                "gpus": st.lists(st.sampled_from(["gpu0", "gpu1", "gpu7"]), max_size=3),
            },
        )
    )
    good_model = st.fixed_dictionaries(
        {"name": st.just("m")},
        optional={
            "gpu_gb": st.integers(0, 90),
            "latency_critical": st.booleans(),
            "sla_ms": st.integers(1, 500),
            "priority": st.integers(1, 4),
        },
    )
    overlay["models"] = draw(
        st.lists(good_model, max_size=1)
        | st.lists(good_model, max_size=1)
        | st.lists(model.map(lambda m: {**m, "name": "m"}), max_size=2)
        | anything
    )
    return overlay


yaml_ish = st.lists(
    st.sampled_from(
        [
            "models:",
            "gpus:",
            "- ",
            "  - ",
            "name: a",
            "gpu_gb: 1",
            "GPU_GB: 80",
            "&a ",
            "*a",
            "<<: *a",
            "---",
            "...",
            "{",
            "}",
            "[",
            "]",
            ",",
            ": ",
            "!!python/object:os.system",
            "!!binary",
            "!!float",
            "!!int",
            "!custom",
            "? ",
            "|",
            ">",
            "'",
            '"',
            "#",
            ".nan",
            ".inf",
            "1e400",
            "0x1F",
            "0o17",
            "2027-01-31",
            "~",
            "null",
            "\t",
            "\r\n",
            "\n",
            "%YAML 1.1",
            "%TAG ! tag:x,2000:",
            "\ufeff",
            "\x00",
            "\x85",
            "\u2028",
            "1" + "0" * 5000,
            "!!bool",
            "!!timestamp",
        ]
    )
    | text,
    max_size=24,
).map("".join)


def dumps(value: Any, style: str) -> str:
    """A document as YAML or JSON text (NaN and infinities written as each format spells them)."""
    if style == "json":
        return json.dumps(value, allow_nan=True, default=str)
    import yaml

    return yaml.safe_dump(value, allow_unicode=True, default_flow_style=style == "yaml-flow")


# --- invariants -----------------------------------------------------------------------------


def check_readers(text_or_bytes: str | bytes, file: str = "fuzz.yaml") -> list[Any] | None:
    """decode + load_documents + read_documents: only InputError may escape. Returns the sources."""
    from policy.errors import InputError
    from policy.readers import read_documents
    from policy.yamlio import decode, load_documents

    try:
        text_value = decode(text_or_bytes, file) if isinstance(text_or_bytes, bytes) else text_or_bytes
        docs = load_documents(text_value, file)
        return read_documents(docs, file)
    except InputError as error:
        if not str(error):
            raise InvariantBroken("an InputError with no message") from None
        if "\n" in error.message:
            raise InvariantBroken(f"a multi-line InputError: {error.message!r}") from None
        return None


def check_report(report: Any, rule_ids: set[str], *, schema_invalid: bool = False) -> None:
    """exit code in {0,1,2}; 2 when the input is schema-invalid; every finding well-formed."""
    code = report.exit_code()
    if code not in (0, 1, 2):
        raise InvariantBroken(f"exit code {code}")
    if schema_invalid and code != 2:
        raise InvariantBroken(f"a schema-invalid plan exited {code}")
    for finding in report.findings:
        if finding.rule not in rule_ids:
            raise InvariantBroken(f"finding of unknown rule {finding.rule!r}")
        if finding.severity not in SEVERITIES:
            raise InvariantBroken(f"finding with severity {finding.severity!r}")
        if not finding.message or not isinstance(finding.message, str):
            raise InvariantBroken(f"finding of {finding.rule} without a message")
        if not finding.file:
            raise InvariantBroken(f"finding of {finding.rule} without a file: {finding.message}")


def check_plan_document(linter: Any, rule_ids: set[str], data: Any, style: str) -> int:
    """A plan-shaped document, as text, through the readers and the Linter, as the CLI
    does it: an InputError becomes a `schema` finding. Returns the exit code."""
    from policy.errors import InputError
    from policy.readers import ReadResult, input_finding, read_documents
    from policy.readers.native import is_plan
    from policy.yamlio import load_documents

    file = "plan.json" if style == "json" else "plan.yaml"
    body = dumps(data, style)
    read = ReadResult(files=1)
    try:
        read.sources = read_documents(load_documents(body, file), file)
    except InputError as error:
        if not error.message or "\n" in error.message:
            raise InvariantBroken(f"InputError message {error.message!r}") from None
        error.file = error.file or file
        read.findings.append(input_finding(error))
    report = linter.lint_sources(read.sources, read)
    invalid = is_plan(data) and schema_invalid(data)
    check_report(report, rule_ids, schema_invalid=invalid)
    code: int = report.exit_code()
    return code


def check_library_paths(linter: Any, rule_ids: set[str], paths: list[Path]) -> int:
    """Linter.lint_paths never raises; the report keeps its invariants. Returns the exit code."""
    report = linter.lint_paths(paths)
    check_report(report, rule_ids)
    code: int = report.exit_code()
    return code


def check_triton(text_value: str | bytes, folder: Path, extra: dict[str, str] | None = None, overlay: Any = None) -> None:
    """A model repository with this config.pbtxt (and maybe a `gpuadmit.yaml` overlay):
    only InputError may escape the reader."""
    from policy.errors import InputError
    from policy.readers import triton

    model = folder / "m"
    model.mkdir(parents=True, exist_ok=True)
    data = text_value.encode("utf-8", "surrogatepass") if isinstance(text_value, str) else text_value
    (model / "config.pbtxt").write_bytes(data)
    for rel, content in (extra or {}).items():
        (model / rel).parent.mkdir(parents=True, exist_ok=True)
        (model / rel).write_text(content, encoding="utf-8")
    if overlay is not None:
        (folder / "gpuadmit.yaml").write_text(dumps(overlay, "yaml-block"), encoding="utf-8")
    try:
        triton.read(folder)
    except InputError:
        pass


# --- the admission app, in-process ----------------------------------------------------------


class AdmissionApp:
    """`webhook.app`'s ASGI app driven directly: no sockets, no server, no lifespan."""

    def __init__(self, mode: str = "enforce", max_body_bytes: int | None = None, deadline_s: float | None = None) -> None:
        from webhook.app import Webhook, build_app
        from webhook.config import ServeConfig
        from webhook.metrics import Metrics
        from webhook.ruleset import RuleHolder

        options: dict[str, Any] = {"plain_http": True, "mode": mode}
        if max_body_bytes is not None:
            options["max_body_bytes"] = max_body_bytes
        if deadline_s is not None:
            options["deadline_s"] = deadline_s
        self.settings = ServeConfig(**options)
        metrics = Metrics()
        self.app = build_app(Webhook(self.settings, RuleHolder(self.settings, metrics), metrics, None))
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.close()

    def post(self, body: bytes, chunks: int = 1, content_length: bool = True) -> tuple[int, bytes]:
        return self.loop.run_until_complete(self._post(body, chunks, content_length))

    async def _post(self, body: bytes, chunks: int, content_length: bool) -> tuple[int, bytes]:
        size = max(1, -(-len(body) // max(chunks, 1)))
        parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
        pending = [{"type": "http.request", "body": p, "more_body": n < len(parts) - 1} for n, p in enumerate(parts)]
        headers = [(b"content-type", b"application/json")]
        if content_length:
            headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/validate",
            "raw_path": b"/validate",
            "query_string": b"timeout=10s",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8443),
        }
        status = 0
        out: list[bytes] = []

        async def receive() -> dict[str, Any]:
            if pending:
                await asyncio.sleep(0)  # a slow client: one chunk per turn of the loop
                return pending.pop(0)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                out.append(message.get("body", b""))

        try:
            await self.app(scope, receive, send)
        except Exception as exc:  # Starlette has answered 500 and re-raises, as uvicorn would log it
            return status or 500, f"{type(exc).__name__}: {exc}".encode()[:500]
        return status, b"".join(out)


def admission_review(
    obj: Any, *, uid: Any = "u-1", kind: tuple[str, str, str] | None = None, operation: str = "CREATE"
) -> dict[str, Any]:
    if kind is None:
        api = obj.get("apiVersion", "v1") if isinstance(obj, dict) else "v1"
        group, _, version = api.rpartition("/") if isinstance(api, str) else ("", "", "v1")
        kind = (group, version, obj.get("kind", "Pod") if isinstance(obj, dict) and isinstance(obj.get("kind"), str) else "Pod")
    group, version, name = kind
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": name},
            "resource": {"group": group, "version": version, "resource": name.lower() + "s"},
            "name": "x",
            "namespace": "ai",
            "operation": operation,
            "userInfo": {"username": "fuzz"},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
        },
    }


def check_admission(
    app: AdmissionApp, body: bytes, *, uid: Any = None, schema_invalid: bool = False, chunks: int = 1
) -> dict[str, Any] | None:
    """200 + a well-formed AdmissionReview echoing the uid, or 400/413 with a message."""
    status, raw = app.post(body, chunks=chunks)
    if status in (400, 413):
        if not raw.strip():
            raise InvariantBroken(f"HTTP {status} without a message")
        return None
    if status != 200:
        raise InvariantBroken(f"HTTP {status}: {raw[:300]!r}")
    answer = json.loads(raw)
    if answer.get("apiVersion") != "admission.k8s.io/v1" or answer.get("kind") != "AdmissionReview":
        raise InvariantBroken(f"not an AdmissionReview: {raw[:300]!r}")
    response = answer.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("allowed"), bool):
        raise InvariantBroken(f"no response.allowed: {raw[:300]!r}")
    if uid is not None and isinstance(uid, str) and uid and response.get("uid") != uid:
        raise InvariantBroken(f"uid {response.get('uid')!r} != {uid!r}")
    if not response["allowed"]:
        status_obj = response.get("status")
        if not isinstance(status_obj, dict) or not status_obj.get("message") or not isinstance(status_obj.get("code"), int):
            raise InvariantBroken(f"a denial without status code and message: {raw[:300]!r}")
    for warning_text in response.get("warnings", []):
        if len(warning_text) >= 120:
            raise InvariantBroken(f"a warning of {len(warning_text)} characters")
    if schema_invalid and app.settings.mode == "enforce" and response["allowed"]:
        raise InvariantBroken("a schema-invalid object was allowed in enforce mode")
    internal = response.get("status", {}).get("code") == 500
    if internal:
        raise InvariantBroken(f"internal error: {response['status']['message'][:300]}")
    result: dict[str, Any] = response
    return result


def schema_invalid(data: Any) -> bool:
    """Whether a native plan body (flat or CRD) fails the plan schema on its own."""
    from pydantic import ValidationError

    from policy.plan import ServingPlan

    body = data
    if isinstance(data, dict) and data.get("kind") == "ServingPlan" and "spec" in data:
        if not isinstance(data["spec"], dict):
            return True
        body = {**data["spec"], "metadata": data.get("metadata") or {}}
    if not isinstance(body, dict):
        return True
    if not isinstance(body.get("metadata"), dict) or "name" not in body.get("metadata", {}):
        body = {**body, "metadata": {"name": "p"}}
    try:
        ServingPlan.model_validate(body)
    except ValidationError:
        return True
    return False


def json_safe(value: Any) -> bool:
    """Whether a value survives strict JSON (the API server never sends NaN or Infinity)."""
    try:
        json.dumps(value, allow_nan=False)
    except (ValueError, TypeError):
        return False
    return not _has_huge(value)


def numbers_fit(value: Any) -> bool:
    """Whether every number is one the API server can send: it decodes objects into int64
    and float64, so larger integers never reach a webhook."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, dict):
        return all(numbers_fit(v) for v in value.values())
    if isinstance(value, list):
        return all(numbers_fit(v) for v in value)
    return True


def _has_huge(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_huge(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_huge(v) for v in value)
    return False

"""The facts schema: every fact a rule can read, with its CEL type, unit, meaning and source.

Facts are the rules' API. This table is their one declaration: the engine builds the
CEL environment from it (so a rule that misspells a fact or compares an int with a
string fails when it loads, naming the rule file and the expression), `docs/facts.md`
is generated from it (`python -m policy.factschema`), and tests/test_factschema.py
checks that the fact builder (policy/facts.py) produces exactly these keys with these
types on every sample.

Adding a fact: add a row to its scope's table below, set it in policy/facts.py, and
regenerate docs/facts.md. The row order is the order docs/facts.md lists them in.

Types are CEL's: `int`, `double`, `bool`, `string`, `list(string)`. A quantity (GiB,
milliseconds, a percentage, a fraction, requests per second) is a `double`; a count, an
index, a priority level or a batch size is an `int`. CEL never mixes the two in
arithmetic (`1 + 1.0` is an error), so a rule writes `0.0` beside a double fact and
`0` beside an int one; comparing a fact with a rule parameter needs no cast.

This module imports nothing of gpuadmit's own.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

INT, DOUBLE, BOOL, STRING, STRINGS = "int", "double", "bool", "string", "list(string)"
CEL_TYPES = (INT, DOUBLE, BOOL, STRING, STRINGS)


@dataclass(frozen=True)
class FactDef:
    """One fact of one scope."""

    scope: str
    name: str
    type: str  # one of CEL_TYPES
    unit: str  # "GiB", "ms", "%", ...; "" for none
    meaning: str
    source: str  # where the value comes from: a plan field, the accounting settings, real capacity, or computed


def _rows(scope: str, *rows: tuple[str, str, str, str, str]) -> tuple[FactDef, ...]:
    return tuple(FactDef(scope, name, type_, unit, meaning, source) for name, type_, unit, meaning, source in rows)


# (name, type, unit, meaning, source)
MODEL = _rows(
    "model",
    ("idx", INT, "", "position of the model in the plan's `models`, from 0", "the plan"),
    ("name", STRING, "", "the model's name", "`models[].name`"),
    # where it runs
    (
        "gpu",
        STRING,
        "",
        'the first GPU or MIG slice it runs on; the first target it names when none exists; "" when unplaced',
        "`models[].gpu` / `gpus`",
    ),
    (
        "gpus",
        STRINGS,
        "",
        "the GPUs and MIG slices of the plan it runs on, in the order it names them",
        "`models[].gpu` / `gpus`, those the plan declares",
    ),
    ("targets", STRINGS, "", "every GPU or slice id it names, whether the plan declares it or not", "`models[].gpu` / `gpus`"),
    ("placed", BOOL, "", "it names at least one GPU or slice", "`models[].gpu` / `gpus`"),
    (
        "unknown_gpus",
        STRINGS,
        "",
        "ids it names that are no GPU or MIG slice of the plan",
        "`models[].gpu` / `gpus` against `gpus[].id`",
    ),
    (
        "mig_parent_gpus",
        STRINGS,
        "",
        "GPUs carved into MIG slices that it names instead of a slice",
        "`models[].gpu` / `gpus` against `gpus[].sharing: mig`",
    ),
    # what it is and the memory it takes
    ("framework", STRING, "", "the serving framework, lower case (`vllm`, `tensorrt_llm`, ...)", "`models[].framework`"),
    ("server", STRING, "", 'the serving process it runs in; "" when not given', "`models[].server` (Triton: the repository)"),
    ("instances", INT, "", "instances (processes) on each GPU it is placed on", "`models[].instances` (default 1)"),
    ("gpu_gb", DOUBLE, "GiB", "memory one instance declares on each of its GPUs; 0 when not declared", "`models[].gpu_gb`"),
    (
        "memory_known",
        BOOL,
        "",
        "its memory is known: declared, or a greedy framework taking a fraction of total memory",
        "computed",
    ),
    ("memory_estimated", BOOL, "", "`gpu_gb` was estimated from model files, not declared", "readers (Triton model files)"),
    (
        "footprint_gb",
        DOUBLE,
        "GiB",
        "all its instances with their CUDA contexts and greedy reservations, on the GPU where one instance takes the most",
        "computed; `accounting.cuda_context_gb`",
    ),
    ("shares_gpu", BOOL, "", "its GPU holds another model, or several of its own instances as separate processes", "computed"),
    # latency
    ("latency_critical", BOOL, "", "the model is latency-critical; the others are bulk", "`models[].latency_critical`"),
    ("has_sla", BOOL, "", "a latency target is given", "`models[].sla_ms`"),
    ("sla_ms", DOUBLE, "ms", "the latency target; 0 when none", "`models[].sla_ms`"),
    ("has_service_time", BOOL, "", "a service time is given", "`models[].service_ms`"),
    (
        "service_ms",
        DOUBLE,
        "ms",
        "the time one request computes once it leaves the queue (its p99); 0 when not given",
        "`models[].service_ms`",
    ),
    ("has_priority", BOOL, "", "a priority is given", "`models[].priority`"),
    (
        "priority",
        INT,
        "",
        "effective priority level, 1 the highest; unset and 0 both read as 1 (Triton's rate limiter reading)",
        "`models[].priority`",
    ),
    (
        "priority_levels",
        INT,
        "",
        "Triton dynamic batching priority levels its requests are queued by; 0 when none",
        "`models[].priority_levels`",
    ),
    # rate limit and queue
    ("rate_limit_declared", BOOL, "", "a `rate_limit` block is given", "`models[].rate_limit`"),
    (
        "rate_limit_enabled",
        BOOL,
        "",
        "the server enforces its rate limit (Triton: started with `--rate-limit`)",
        "`models[].rate_limit.enabled`",
    ),
    ("rate_limited", BOOL, "", "an enforced limit on requests per second or concurrency", "computed from `rate_limit`"),
    ("max_rps", DOUBLE, "requests/s", "requests per second admitted; 0 when unlimited", "`models[].rate_limit.max_rps`"),
    ("max_concurrency", INT, "", "requests executing at once; 0 when unlimited", "`models[].rate_limit.max_concurrency`"),
    ("has_queue_bound", BOOL, "", "the queue has a size limit", "`models[].rate_limit.max_queue`"),
    ("max_queue", INT, "requests", "the queue's size limit; 0 when none", "`models[].rate_limit.max_queue`"),
    ("has_queue_timeout", BOOL, "", "queued requests time out", "`models[].rate_limit.queue_timeout_ms`"),
    (
        "queue_timeout_ms",
        DOUBLE,
        "ms",
        "how long a request may wait in the queue; 0 when unbounded",
        "`models[].rate_limit.queue_timeout_ms`",
    ),
    (
        "timeout_action",
        STRING,
        "",
        'what happens to a request that times out in the queue (`reject`, `delay`); "" when not given',
        "`models[].rate_limit.timeout_action`",
    ),
    # caps
    ("capped", BOOL, "", "bounded by a batch size, a compute share or an enforced rate limit", "computed"),
    ("max_batch_size", INT, "", "the largest batch; 0 when not capped", "`models[].caps.max_batch_size`"),
    (
        "compute_pct",
        DOUBLE,
        "%",
        "its share of the GPU's compute (MPS active thread percentage); 0 when not capped",
        "`models[].caps.compute_pct`",
    ),
    (
        "pinned_memory_gb",
        DOUBLE,
        "GiB",
        "its MPS pinned device memory limit (CUDA_MPS_PINNED_DEVICE_MEM_LIMIT); 0 when not given",
        "`models[].caps.pinned_memory_gb`",
    ),
    # greedy allocator
    (
        "greedy",
        BOOL,
        "",
        "its framework reserves memory beyond its weights (vLLM, SGLang, TensorRT-LLM, TensorFlow, ONNX Runtime)",
        "`models[].framework`",
    ),
    (
        "greedy_setting",
        STRING,
        "",
        'the framework\'s knob for that reservation, as the framework names it; "" when not greedy',
        "`models[].framework`",
    ),
    (
        "memory_fraction",
        DOUBLE,
        "fraction",
        "the fraction set for the greedy allocator; 0 when not set",
        "`models[].memory_fraction`",
    ),
    # who shares its units
    (
        "neighbours",
        STRINGS,
        "",
        "the first 10 (in name order) of the other models on any of its GPUs; `n_neighbours` counts them all",
        "computed",
    ),
    ("critical_neighbours", STRINGS, "", "the first 10 of the latency-critical ones among them", "computed"),
    ("bulk_neighbours", STRINGS, "", "the first 10 of the bulk ones among them", "computed"),
    ("n_neighbours", INT, "", "how many other models share any of its GPUs", "computed"),
    ("n_critical_neighbours", INT, "", "how many of them are latency-critical", "computed"),
    ("n_bulk_neighbours", INT, "", "how many of them are bulk", "computed"),
    # what arbitrates between a latency-critical model and its bulk neighbours (policy/protection.py, docs/PROTECTION.md)
    (
        "server_bulk",
        STRINGS,
        "",
        "latency-critical models: the first 10 bulk neighbours in its own serving process, whose priorities it competes with; empty for bulk models",
        "computed (policy/protection.py)",
    ),
    (
        "best_server_bulk_priority",
        INT,
        "",
        "the effective priority of the highest-priority of them; 0 when none",
        "computed (policy/protection.py)",
    ),
    (
        "best_server_bulk_name",
        STRING,
        "",
        'that model\'s name (the first on ties); "" when none',
        "computed (policy/protection.py)",
    ),
    (
        "bulk_apart",
        STRINGS,
        "",
        "latency-critical models: the first 10 bulk neighbours in other serving processes, which no priority orders against it",
        "computed (policy/protection.py)",
    ),
    ("bulk_apart_unlimited", STRINGS, "", "those of them without a compute limit", "computed (policy/protection.py)"),
    (
        "arbitration",
        STRING,
        "",
        'latency-critical models: what arbitrates against its bulk neighbours: `alone`, `server`, `compute limits` or `nothing`; "" for bulk models',
        "computed (policy/protection.py)",
    ),
    (
        "guaranteed_compute_pct",
        DOUBLE,
        "%",
        "the compute share it keeps when every other process beside it uses its whole limit: min(own limit, 100 − their limits)",
        "computed (policy/protection.py)",
    ),
)

GPU = _rows(
    "gpu",
    ("idx", INT, "", "position among the plan's GPUs and MIG slices, from 0", "the plan"),
    ("id", STRING, "", "the GPU's id, or `<gpu>:<n>` for MIG slice n", "`gpus[].id`"),
    ("gpu", STRING, "", "the same as `id`", "`gpus[].id`"),
    ("parent", STRING, "", "the GPU a MIG slice is carved from; a GPU's own id", "`gpus[].id`"),
    ("kind", STRING, "", "`gpu` or `mig-slice`", "`gpus[].sharing`"),
    (
        "product",
        STRING,
        "",
        'the catalog\'s product name, else the product as declared; "" when neither',
        "`gpus[].product`, policy/data/gpus.yaml",
    ),
    ("product_known", BOOL, "", "the product is in the GPU catalog", "policy/data/gpus.yaml"),
    ("declared_product", STRING, "", 'the product as the plan gives it; "" when not given', "`gpus[].product`"),
    ("sharing", STRING, "", "`exclusive`, `time-slicing`, `mps`, `mig`, or `mig-slice` for a slice", "`gpus[].sharing`"),
    # how the product name resolved in the catalog
    (
        "product_status",
        STRING,
        "",
        "`known` (one product), `ambiguous` (several), `unknown` (none) or `absent` (no name)",
        "`gpus[].product` against policy/data/gpus.yaml",
    ),
    (
        "product_hint",
        STRING,
        "",
        'what to write instead: the variants to choose from, or the closest catalog spelling; "" when known',
        "policy/data/gpus.yaml",
    ),
    (
        "catalog_capacity_gb",
        DOUBLE,
        "GiB",
        "the product's memory from the catalog; 0 when the name did not resolve, and for a slice",
        "policy/data/gpus.yaml",
    ),
    ("memory_gb_declared", DOUBLE, "GiB", "the plan's own `memory_gb`; 0 when not given, and for a slice", "`gpus[].memory_gb`"),
    (
        "capacity_bound_gb",
        DOUBLE,
        "GiB",
        "the most memory any catalog GPU has: a bound that holds even when the product is unknown",
        "policy/data/gpus.yaml",
    ),
    # memory
    ("capacity_known", BOOL, "", "its memory is known (declared, from the catalog, or a MIG profile)", "computed"),
    (
        "capacity_gb",
        DOUBLE,
        "GiB",
        "its memory, lowered to the real device's when verified; 0 when unknown",
        "`gpus[].memory_gb`, the catalog, real capacity",
    ),
    (
        "capacity_text",
        STRING,
        "",
        'its memory as messages and fix hints write it ("79.6 GiB"; "40.0 GiB (the device\'s; 80.0 declared)" where real capacity lowered it); "unknown" when not known',
        "computed",
    ),
    ("usable_gb", DOUBLE, "GiB", "capacity less the headroom", "computed; `accounting.headroom_pct`"),
    ("declared_gb", DOUBLE, "GiB", "what its models' instances declare (instances × gpu_gb)", "computed"),
    ("greedy_gb", DOUBLE, "GiB", "what greedy allocators reserve here beyond that", "computed"),
    ("context_gb", DOUBLE, "GiB", "CUDA contexts: one per instance", "computed; `accounting.cuda_context_gb`"),
    ("committed_gb", DOUBLE, "GiB", "declared + greedy + contexts + memory other processes hold", "computed"),
    (
        "overflow_gb",
        DOUBLE,
        "GiB",
        "what is committed beyond its usable memory; 0 when it fits or its capacity is unknown",
        "computed",
    ),
    ("utilisation_pct", DOUBLE, "%", "committed as a share of capacity; 0 when capacity is unknown", "computed"),
    ("n_models", INT, "", "models placed here (a model naming it twice counts twice)", "computed"),
    ("n_processes", INT, "", "CUDA processes here: the instances of its models", "computed"),
    # who shares it
    ("models", STRINGS, "", "the models placed here, in plan order", "computed"),
    ("critical", STRINGS, "", "the latency-critical ones", "computed"),
    ("bulk", STRINGS, "", "the bulk ones", "computed"),
    (
        "servers_apart",
        BOOL,
        "",
        "latency-critical and bulk models here run in different serving processes, so priorities cannot arbitrate",
        "computed from `models[].server`",
    ),
    ("bulk_without_compute_cap", STRINGS, "", "bulk models here with no compute share", "computed"),
    ("bulk_uncapped", STRINGS, "", "bulk models here with no cap at all (batch, compute or rate)", "computed"),
    ("compute_pct_sum", DOUBLE, "%", "the compute shares of its models, each model once", "computed"),
    ("critical_compute_pct_sum", DOUBLE, "%", "the compute shares of its latency-critical models", "computed"),
    ("bulk_compute_pct_sum", DOUBLE, "%", "the compute shares of its bulk models", "computed"),
    ("critical_without_compute_pct", STRINGS, "", "latency-critical models here with no compute share", "computed"),
    ("largest_model", STRING, "", 'the model taking the most memory here (the first on ties); "" when none', "computed"),
    ("largest_gb", DOUBLE, "GiB", "what that model takes here, contexts and reservations included", "computed"),
    ("unknown_memory", STRINGS, "", "models here whose memory is not known", "computed"),
    # what arbitrates between its latency-critical and bulk models (policy/protection.py, docs/PROTECTION.md)
    (
        "bulk_apart",
        STRINGS,
        "",
        "bulk models here in another serving process than a latency-critical one (all of them when the critical ones are in several)",
        "computed (policy/protection.py)",
    ),
    ("bulk_apart_unlimited", STRINGS, "", "those of them without a compute limit", "computed (policy/protection.py)"),
    ("bulk_apart_unpinned", STRINGS, "", "those of them without an MPS pinned memory limit", "computed (policy/protection.py)"),
    (
        "arbitration",
        STRING,
        "",
        "what arbitrates between its latency-critical and bulk models: `alone`, `server`, `compute limits` or `nothing`",
        "computed (policy/protection.py)",
    ),
    ("compute_limits", STRINGS, "", "each model here with a compute limit, as `<name> <pct> %`", "`models[].caps.compute_pct`"),
    (
        "critical_min_compute_pct",
        DOUBLE,
        "%",
        "the least compute share any latency-critical model here is sure of (100 when none)",
        "computed (policy/protection.py)",
    ),
    ("critical_min_compute_name", STRING, "", 'that model; "" when none', "computed (policy/protection.py)"),
    # greedy allocators
    ("greedy_models", STRINGS, "", "models here with a greedy allocator", "computed"),
    ("greedy_default", STRINGS, "", "those whose allocator setting is left at the framework default", "computed"),
    ("greedy_default_detail", STRINGS, "", "the same, each with the setting, its default and the GiB it takes", "computed"),
    (
        "greedy_fraction_sum",
        DOUBLE,
        "fraction",
        "the fractions of total memory greedy allocators here claim up front (per instance)",
        "computed",
    ),
    (
        "greedy_cannot_start",
        STRINGS,
        "",
        "greedy models whose weights exceed the memory their allocator setting gives them here, each with the figures",
        "computed",
    ),
    (
        "greedy_reservations",
        STRINGS,
        "",
        "what each greedy allocator here takes at start, with its setting, the memory it is a fraction of, and the GiB; empty when capacity is unknown",
        "computed",
    ),
    (
        "limits_enforced",
        BOOL,
        "",
        "every model here has its memory limit enforced from outside, contexts included (HAMi): judged against the whole device",
        "`models[].memory_limit_enforced`",
    ),
    (
        "limit_share_sum",
        DOUBLE,
        "fraction",
        "those enforced limits given as shares of the device, summed over instances",
        "computed",
    ),
    # MIG layout
    ("mig", STRINGS, "", "the MIG profiles carved on a GPU; empty for a slice", "`gpus[].mig`"),
    ("mig_supported", BOOL, "", "its product supports MIG", "policy/data/gpus.yaml"),
    (
        "mig_unknown_profiles",
        STRINGS,
        "",
        "carved profiles its product does not offer (no catalog product, when its product did not resolve)",
        "`gpus[].mig` against the catalog",
    ),
    (
        "mig_over_limit",
        STRINGS,
        "",
        "profiles carved more often than the product allows, each with its limit",
        "`gpus[].mig` against the catalog",
    ),
    ("mig_compute_used", INT, "slices", "compute slices the carved profiles take", "computed from the profiles"),
    ("mig_compute_total", INT, "slices", "compute slices the product has (7 when unknown)", "policy/data/gpus.yaml"),
    ("mig_memory_used_gb", DOUBLE, "GiB", "memory the carved profiles take", "computed from the profiles and the catalog"),
    (
        "mig_memory_slices_used",
        INT,
        "slices",
        "memory slices the carved profiles take (0 when the product is unknown)",
        "policy/data/gpus.yaml",
    ),
    (
        "mig_memory_slices_total",
        INT,
        "slices",
        "memory slices the product has (8; A30: 4; 8 when unknown)",
        "policy/data/gpus.yaml",
    ),
    # real capacity
    (
        "declared_capacity_gb",
        DOUBLE,
        "GiB",
        "its memory as the plan declares it, before verification; 0 when unknown",
        "`gpus[].memory_gb`, the catalog",
    ),
    ("verified", BOOL, "", "checked against a real device (NVML or an inventory)", "real capacity"),
    ("real_found", BOOL, "", "a real device was found for it", "real capacity"),
    ("real_device", STRING, "", 'the real device it was matched with; "" when none', "real capacity"),
    ("real_memory_known", BOOL, "", "the real device's memory is known", "real capacity"),
    ("real_memory_gb", DOUBLE, "GiB", "the real device's memory; 0 when unknown", "real capacity (NVML reports MiB)"),
    ("real_product", STRING, "", 'the real device\'s product name; "" when unknown', "real capacity"),
    ("product_matches", BOOL, "", "the declared product is the real one (true when not verified)", "real capacity"),
    ("real_mig_mode", BOOL, "", "MIG mode is on on the real device", "real capacity"),
    ("real_mig", STRINGS, "", "the MIG profiles really carved", "real capacity"),
    ("real_mig_text", STRING, "", "the real MIG layout, as shown in messages", "real capacity"),
    ("mig_matches", BOOL, "", "the declared MIG layout is the real one (true when not verified)", "real capacity"),
    ("other_processes_gb", DOUBLE, "GiB", "memory processes outside the plan already hold on it", "real capacity"),
    ("other_processes", STRINGS, "", "those processes, as shown in messages", "real capacity"),
    ("capacity_note", STRING, "", 'why the real device could not be judged; "" when it could', "real capacity"),
)

WAIVER = _rows(
    "waiver",
    ("idx", INT, "", "position in the plan's `waivers`, from 0", "the plan"),
    ("rule", STRING, "", "the rule it waives", "`waivers[].rule`"),
    ("model", STRING, "", 'the model it is limited to; "" for all', "`waivers[].model`"),
    ("gpu", STRING, "", 'the GPU it is limited to; "" for all', "`waivers[].gpu`"),
    ("reason", STRING, "", "why the finding is accepted", "`waivers[].reason`"),
    ("expires", STRING, "date", 'its expiry date, YYYY-MM-DD; "" when it never expires', "`waivers[].expires`"),
    ("expired", BOOL, "", "it expired before today", "computed against today's date"),
    ("days_expired", INT, "days", "days since it expired; 0 when it has not", "computed against today's date"),
)

PLAN = _rows(
    "plan",
    ("idx", INT, "", "always 0", "the plan"),
    ("name", STRING, "", "the plan's name", "`metadata.name`"),
    ("n_models", INT, "", "models in the plan", "`models`"),
    ("n_gpus", INT, "", "GPUs in the plan (MIG slices not counted)", "`gpus`"),
    ("today", STRING, "date", "the date of the judgement, YYYY-MM-DD", "the clock"),
    (
        "cuda_context_gb",
        DOUBLE,
        "GiB",
        "memory each CUDA process holds before any model memory",
        "`accounting.cuda_context_gb` (default 0.5)",
    ),
    ("headroom_pct", DOUBLE, "%", "share of each GPU kept free", "`accounting.headroom_pct` (default 5)"),
    ("capacity_source", STRING, "", "where capacity came from: `declared`, `nvml` or `inventory`", "`--capacity`"),
    ("capacity_origin", STRING, "", "that source, as shown in messages", "`--capacity`"),
    ("capacity_host", STRING, "", 'the host whose devices judged the plan; "" when none', "real capacity"),
    ("capacity_gpus", INT, "", "devices the capacity source reported on that host", "real capacity"),
    ("capacity_error", STRING, "", 'why real capacity could not be read; "" when it could', "real capacity"),
    (
        "strict_capacity",
        BOOL,
        "",
        "a plan that cannot be checked against real capacity fails (`--strict-capacity`)",
        "`--strict-capacity`",
    ),
    (
        "unjudged",
        STRINGS,
        "",
        "objects of the input that hold GPUs but could not be judged, as `<kind> <name>`",
        "readers (`unjudged`)",
    ),
)

#: Every fact, by scope (the rule scopes that judge plans).
SCHEMA: dict[str, tuple[FactDef, ...]] = {"model": MODEL, "gpu": GPU, "waiver": WAIVER, "plan": PLAN}

#: The CEL message type of each scope's facts (see `descriptor_pool`).
PACKAGE = "gpuadmit.facts"
MESSAGES = {"model": "Model", "gpu": "Gpu", "waiver": "Waiver", "plan": "Plan"}


def fact_names(scope: str) -> tuple[str, ...]:
    return tuple(fact.name for fact in SCHEMA[scope])


def message_name(scope: str) -> str:
    """The full CEL type name of a scope's facts, e.g. `gpuadmit.facts.Model`."""
    return f"{PACKAGE}.{MESSAGES[scope]}"


@functools.lru_cache(maxsize=1)
def descriptor_pool() -> Any:
    """A protobuf descriptor pool with one message per scope, a field per fact.

    It types CEL's checker: `model.gpu_gbb` is an undefined field and `model.instances
    > "a"` has no matching overload, both when a rule is compiled.
    """
    from google.protobuf import descriptor_pb2
    from google.protobuf import descriptor_pool as pool_module

    proto = descriptor_pb2.FieldDescriptorProto
    kinds = {
        INT: proto.TYPE_INT64,
        DOUBLE: proto.TYPE_DOUBLE,
        BOOL: proto.TYPE_BOOL,
        STRING: proto.TYPE_STRING,
        STRINGS: proto.TYPE_STRING,
    }
    file = descriptor_pb2.FileDescriptorProto(name="gpuadmit/facts.proto", package=PACKAGE, syntax="proto3")
    for scope, facts in SCHEMA.items():
        message = file.message_type.add(name=MESSAGES[scope])
        for number, fact in enumerate(facts, start=1):
            message.field.add(
                name=fact.name,
                number=number,
                type=kinds[fact.type],
                label=proto.LABEL_REPEATED if fact.type == STRINGS else proto.LABEL_OPTIONAL,
            )
    pool = pool_module.DescriptorPool()
    pool.Add(file)
    return pool


def type_of(value: Any) -> str | None:
    """The CEL type of a fact's Python value, as the table spells it; None when no fact may hold it."""
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, str):
        return STRING
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return STRINGS
    return None


def mismatches(scope: str, fact: dict[str, Any]) -> list[str]:
    """How one built fact dict differs from the schema: missing, undeclared or mistyped keys."""
    declared = {f.name: f for f in SCHEMA[scope]}
    problems = [
        f"{scope}.{name}: built but not in the schema (add a row to policy/factschema.py)"
        for name in fact
        if name not in declared
    ]
    for name, definition in declared.items():
        if name not in fact:
            problems.append(f"{scope}.{name}: in the schema but not built")
            continue
        found = type_of(fact[name])
        if found != definition.type:
            problems.append(f"{scope}.{name}: built as {found or type(fact[name]).__name__}, the schema says {definition.type}")
    return problems


_SCOPE_TITLES = {
    "model": "Model facts (`model.*`, scope `model`)",
    "gpu": "GPU facts (`gpu.*`, scope `gpu`: each GPU and MIG slice)",
    "waiver": "Waiver facts (`waiver.*`, scope `waiver`)",
    "plan": "Plan facts (`plan.*`, every scope)",
}


def markdown() -> str:
    """docs/facts.md: every fact, generated from this table."""
    lines = [
        "# Facts",
        "",
        "<!-- Generated from policy/factschema.py by `python -m policy.factschema`; do not edit. -->",
        "",
        "Rules are CEL expressions over these facts (see [rules.md](rules.md)). A rule of",
        "scope `model` sees `model`, one of `gpu` sees `gpu`, one of `waiver` sees `waiver`;",
        "every rule sees `plan` and its own `params`. Each fact has a fixed CEL type: a rule",
        "that names a fact not listed here, or compares facts of different types, fails when",
        "it loads. Quantities are `double` (write `0.0`, not `0`, beside them); counts and",
        "levels are `int`. Comparing a fact with a rule parameter needs no cast.",
        "",
        "Memory is in GiB (2^30 bytes).",
        "",
    ]
    for scope, facts in SCHEMA.items():
        lines += [f"## {_SCOPE_TITLES[scope]}", "", "| fact | type | unit | meaning | source |", "|---|---|---|---|---|"]
        for fact in facts:
            cells = [f"`{scope}.{fact.name}`", f"`{fact.type}`", fact.unit, fact.meaning, fact.source]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")

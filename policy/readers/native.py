"""Native plans: `kind: ServingPlan` files (flat or as a Kubernetes custom resource with
`spec`), and the seed form (top-level `gpu_gb`/`GPU_GB` plus `models`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..config import MAX_REPORTED_ERRORS, input_errors
from ..errors import InputError
from ..plan import Gpu, Model, ServingPlan, Waiver
from ..source import PlanSource
from ..yamlio import Document, LineDict, LineList, load_documents, read_text

PLAN_KEYS = {"gpu_gb", "GPU_GB", "models", "gpus"}


def is_plan(data: Any) -> bool:
    """A native plan document: kind ServingPlan, or plan-shaped keys without a Kubernetes kind."""
    if not isinstance(data, dict):
        return False
    if data.get("kind") == "ServingPlan":
        return True
    return "kind" not in data and "apiVersion" not in data and bool(PLAN_KEYS & set(data))


def read_plan_file(path: Path) -> list[PlanSource]:
    """Every plan document in one file (used where the file is known to hold plans)."""
    file = str(path)
    docs = load_documents(read_text(path), file)
    if not docs:
        raise InputError("empty file: no plan in it", file=file)
    return [read_plan_document(doc, default_name=path.stem) for doc in docs]


def read_plan_document(doc: Document, default_name: str = "plan") -> PlanSource:
    """One document to a PlanSource, with the position of every model, GPU and waiver."""
    data = doc.data
    if not isinstance(data, dict):
        raise InputError("expected a mapping with `models` (a plan)", file=doc.file, line=doc.line)
    body: dict[str, Any] = data
    prefix: tuple[str, ...] = ()
    if data.get("kind") == "ServingPlan" and "spec" in data:
        spec = data.get("spec")
        if not isinstance(spec, dict):
            raise InputError("`spec` must be a mapping", file=doc.file, line=doc.line, field="spec")
        body = {**spec, "metadata": data.get("metadata") or {}}
        prefix = ("spec",)
    metadata = body.get("metadata")
    if metadata is None or (isinstance(metadata, dict) and "name" not in metadata):
        body = {**body, "metadata": {**(metadata or {}), "name": default_name}}
    try:
        plan = ServingPlan.model_validate(body)
    except ValidationError as exc:
        errors = _every_error(exc, body)
        error = input_errors(errors, _reattach(data, prefix, body), doc.file, ServingPlan)
        for each in error.each():
            if each.line is None:
                each.line = doc.line
        raise error from None
    source = PlanSource(plan=plan, file=doc.file, line=doc.line)
    source.positions.update(positions_of(data[prefix[0]] if prefix else data))
    source.positions[("plan", plan.metadata.name)] = (doc.line, 1)
    return source


#: The lists a plan validates item by item, and the model of their items.
_ITEMS = (("gpus", Gpu), ("models", Model), ("waivers", Waiver))
#: Lists longer than this are not written by hand: their first error is reported alone,
#: so a hostile list of a million bad items costs one error, not a second validation.
ITEMISED_UP_TO = 1000


def _every_error(exc: ValidationError, body: dict[str, Any]) -> list[Any]:
    """Every error of a plan, up to MAX_REPORTED_ERRORS: pydantic stops at the first bad
    item of each list (so that a hostile list of a million bad items costs little), so
    the items of those lists (up to ITEMISED_UP_TO long) are validated one by one here,
    until enough are found."""
    errors = list(exc.errors(include_url=False))
    seen = {tuple(e["loc"]) for e in errors}
    for key, item_model in _ITEMS:
        items = body.get(key)
        if not isinstance(items, list) or len(items) > ITEMISED_UP_TO or not any(e["loc"][:1] == (key,) for e in errors):
            continue
        for n, item in enumerate(items):
            if len(errors) >= MAX_REPORTED_ERRORS:
                return errors
            try:
                item_model.model_validate(item)
            except ValidationError as item_exc:
                for error in item_exc.errors(include_url=False):
                    loc = (key, n, *error["loc"])
                    if loc not in seen:
                        seen.add(loc)
                        errors.append({**error, "loc": loc})
    return errors[:MAX_REPORTED_ERRORS]


def _reattach(original: dict[str, Any], prefix: tuple[str, ...], body: dict[str, Any]) -> Any:
    """Positions for errors: the pydantic loc is relative to `body`, lines live in `original`."""
    if not prefix:
        return original
    inner = original[prefix[0]]
    return inner if isinstance(inner, LineDict) else body


def positions_of(body: Any) -> dict[tuple[Any, ...], tuple[int, int]]:
    """(kind, name[, field]) -> (line, column) for the models, GPUs and waivers of a plan body."""
    positions: dict[tuple[Any, ...], tuple[int, int]] = {}
    if not isinstance(body, dict):
        return positions
    for key, kind, name_key in (("models", "model", "name"), ("gpus", "gpu", "id"), ("waivers", "waiver", None)):
        items = body.get(key)
        if not isinstance(items, LineList):
            continue
        for n, item in enumerate(items):
            name = item.get(name_key) if name_key and isinstance(item, dict) else n
            if n < len(items.item_lines):
                positions[(kind, name)] = items.item_lines[n]
            if isinstance(item, LineDict):
                for field_name, pos in item.key_lines.items():
                    positions[(kind, name, field_name)] = pos
    if "gpu_gb" in body or "GPU_GB" in body:  # seed form: the implicit GPU is the size key
        key = "gpu_gb" if "gpu_gb" in body else "GPU_GB"
        if isinstance(body, LineDict) and key in body.key_lines:
            positions[("gpu", "gpu0")] = body.key_lines[key]
    return positions

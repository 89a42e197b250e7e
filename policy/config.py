"""The project config file (`.gpuadmit.yaml`): rule overrides, extra rule folders,
memory accounting, waivers. Found from the working directory upward."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import is_typeddict

from .closest import closest
from .errors import InputError
from .settings import Accounting

if TYPE_CHECKING:
    from .ignore import IgnoreList
from .plan import Waiver
from .rules import RuleOverride
from .unit_slips import unit_hint
from .yamlio import load_documents, position, read_text

CONFIG_NAMES = (".gpuadmit.yaml", ".gpuadmit.yml")


class ProjectConfig(BaseModel):
    """Everything a project can set without writing Python."""

    model_config = ConfigDict(extra="forbid")

    rules: dict[str, RuleOverride] = Field(default_factory=dict, description="Per rule id: enabled, severity, params.")
    rule_dirs: list[str] = Field(default_factory=list, description="Extra rule folders, relative to this file.")
    accounting: Accounting = Field(default_factory=Accounting)
    fail_on: Literal["error", "warning", "never"] = "error"
    strict_capacity: bool = Field(False, description="Unverifiable capacity is an error, not a warning.")
    waivers: list[Waiver] = Field(default_factory=list, description="Waivers that apply to every plan.")
    ignore: list[str] = Field(
        default_factory=list,
        description="Path globs, relative to this file, that are never read (`charts/**`, `*.tmpl.yaml`).",
    )
    #: Where the file was read from; rule_dirs are relative to it. Not a key of the file.
    base_dir: SkipJsonSchema[Path] = Field(default_factory=Path.cwd, exclude=True)

    def rule_paths(self) -> list[Path]:
        return [(self.base_dir / d).resolve() for d in self.rule_dirs]

    def ignored(self) -> IgnoreList | None:
        """The `ignore:` globs as a path test, or None when there are none."""
        from .ignore import IgnoreList

        return IgnoreList(self.ignore, self.base_dir) if self.ignore else None


def find_config(start: Path | None = None) -> Path | None:
    """The nearest config file in `start` or one of its parents."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for name in CONFIG_NAMES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def load_config(path: Path | None) -> ProjectConfig:
    if path is None:
        return ProjectConfig()
    file = str(path)
    docs = load_documents(read_text(path, what="config"), file)
    data = docs[0].data if docs else {}
    if not isinstance(data, dict):
        raise InputError("the config file holds one YAML mapping", file=file)
    if "base_dir" in data:  # set from where the file is, never by it
        line, column = position(data, ("base_dir",))
        raise InputError("unknown key", file=file, line=line, column=column, field="base_dir")
    try:
        config = ProjectConfig.model_validate({**data, "base_dir": path.parent})
    except ValidationError as exc:
        raise pydantic_input_error(exc, data, file, ProjectConfig) from None
    return config


#: At most this many errors of one input are reported together.
MAX_REPORTED_ERRORS = 20


def pydantic_input_error(exc: ValidationError, data: object, file: str, model: type[BaseModel]) -> InputError:
    """Every pydantic error (up to MAX_REPORTED_ERRORS) as one-line errors with file, line and
    field, a did-you-mean and unit-slip hints: the first, with the others in its `also`."""
    return input_errors(exc.errors(include_url=False), data, file, model)


def input_errors(errors: list[Any], data: object, file: str, model: type[BaseModel]) -> InputError:
    """`errors` (pydantic's error dicts, locations relative to `model`) as one InputError
    carrying the others in its `also`."""
    each = [_input_error(e, data, file, model) for e in errors[:MAX_REPORTED_ERRORS]]
    each.sort(key=lambda e: (e.line or 0, e.column or 0))  # in input order
    first, first.also = each[0], each[1:]
    return first


def _input_error(error: Any, data: object, file: str, model: type[BaseModel]) -> InputError:
    loc = tuple(error["loc"])
    line, column = position(data, loc)
    field = _dotted(loc)
    message = error["msg"].removeprefix("Value error, ")  # our own validators' words stand alone
    if error["type"] == "extra_forbidden" and loc:
        message = "unknown key"
        suggestion = _did_you_mean(str(loc[-1]), _known_fields(model, loc[:-1]))
        if suggestion:
            message += f"; did you mean {suggestion!r}?"
    elif "input" in error and error["type"] not in {"missing"} and not isinstance(error["input"], (dict, list)):
        message += f" (got {error['input']!r})"
        hint = unit_hint(field, error["input"])
        if hint:
            message += f"; {hint}"
    return InputError(message, file=file, line=line, column=column, field=field or None)


def _dotted(loc: tuple[object, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _did_you_mean(key: str, known: list[str]) -> str | None:
    return closest(key, known)


def _known_fields(model: type[BaseModel], path: tuple[object, ...]) -> list[str]:
    """Field names of the (nested) pydantic model, or settings TypedDict, that `path` leads to."""
    current: type[BaseModel] | None = model
    key_next = False  # the part after a mapping field (`rules: {<rule id>: ...}`) is a key, not a field
    for n, part in enumerate(path):
        if current is None or isinstance(part, int):
            continue
        if key_next:
            key_next = False
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        key_next = any(get_origin(a) is dict for a in (field.annotation, *getattr(field.annotation, "__args__", ())))
        current = None
        for arg in _flatten(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                current = arg
                break
            if is_typeddict(arg):  # a settings block: its keys, if the path ends there
                rest = [p for p in path[n + 1 :] if not isinstance(p, int)]
                return [] if rest else list(getattr(arg, "__annotations__", {}))
    if current is None:
        return []
    names = list(current.model_fields)
    names += [f.alias for f in current.model_fields.values() if f.alias]
    return names


def _flatten(annotation: object) -> list[object]:
    """`list[Model] | None` -> [Model, NoneType]: the types an annotation can hold."""
    args = getattr(annotation, "__args__", None)
    if not args:
        return [annotation]
    out: list[object] = []
    for arg in args:
        out.extend(_flatten(arg))
    return out

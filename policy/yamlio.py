"""Safe YAML/JSON loading that remembers where every key came from.

Plans are read with PyYAML's C parser when available. Three things the stock loader
does not do, and a linter must: remember the line of each key (findings point at it),
reject duplicate keys (the second silently wins otherwise), and refuse documents that
expand into absurd sizes through aliases (a "billion laughs" file).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterator

import yaml

from .errors import InputError

try:  # the C parser is ~10x faster; pure Python is a correct fallback
    _BaseLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _BaseLoader = yaml.SafeLoader

#: Largest number of values one document may expand to; far above any real plan
#: (a 10,000-model plan is about 150,000 values) and far below what hurts.
MAX_VALUES = 2_000_000
MAX_DEPTH = 64


class LineDict(dict):  # type: ignore[type-arg]
    """A mapping that knows the (line, column) of itself and of each of its keys, 1-based."""

    __slots__ = ("line", "column", "key_lines")

    def __init__(self) -> None:
        super().__init__()
        self.line: int | None = None
        self.column: int | None = None
        self.key_lines: dict[Any, tuple[int, int]] = {}


class LineList(list):  # type: ignore[type-arg]
    """A sequence that knows the (line, column) of each item, 1-based."""

    __slots__ = ("line", "column", "item_lines")

    def __init__(self) -> None:
        super().__init__()
        self.line: int | None = None
        self.column: int | None = None
        self.item_lines: list[tuple[int, int]] = []


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that builds LineDict/LineList and rejects duplicate keys."""

    def construct_yaml_map(self, node: yaml.MappingNode) -> Iterator[LineDict]:
        data = LineDict()
        data.line = node.start_mark.line + 1
        data.column = node.start_mark.column + 1
        yield data
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=False)
            try:
                hash(key)
            except TypeError:
                raise InputError(
                    "a mapping key must be a scalar",
                    line=key_node.start_mark.line + 1,
                    column=key_node.start_mark.column + 1,
                ) from None
            if key in data.key_lines and key_node.tag != "tag:yaml.org,2002:merge":
                first = data.key_lines[key][0]
                raise InputError(
                    f"duplicate key (first defined on line {first})",
                    line=key_node.start_mark.line + 1,
                    column=key_node.start_mark.column + 1,
                    field=str(key),
                )
            data.key_lines[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            data[key] = self.construct_object(value_node, deep=False)

    def construct_yaml_seq(self, node: yaml.SequenceNode) -> Iterator[LineList]:
        data = LineList()
        data.line = node.start_mark.line + 1
        data.column = node.start_mark.column + 1
        yield data
        data.extend(self.construct_object(child, deep=False) for child in node.value)
        data.item_lines = [(c.start_mark.line + 1, c.start_mark.column + 1) for c in node.value]


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_yaml_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_yaml_seq)
# Dates stay strings until pydantic reads them, so one code path handles YAML and JSON.
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_str)


@dataclass(frozen=True)
class Document:
    """One YAML/JSON document of a file, with its index and first line."""

    data: Any
    file: str
    index: int
    line: int


def decode(raw: bytes, file: str) -> str:
    """Bytes to text: UTF-8 (BOM tolerated), refusing binary files with one clear line."""
    if b"\x00" in raw[:8192]:
        raise InputError("binary file, not YAML or JSON", file=file)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})", file=file, line=line) from None


def load_documents(text: str, file: str) -> list[Document]:
    """Every document of a YAML (or JSON, a YAML subset) text, with positions."""
    if text.lstrip().startswith(("{", "[")):
        return [Document(_load_json(text, file), file, 0, 1)]
    loader = _Loader(text)
    docs: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            data = loader.construct_document(node)
            if data is not None:
                docs.append(Document(data, file, len(docs), node.start_mark.line + 1))
    except InputError as exc:
        exc.file = file
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(
            f"invalid YAML: {problem}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", file=file) from None
    except RecursionError:
        raise InputError(f"nested deeper than {MAX_DEPTH} levels", file=file) from None
    finally:
        loader.dispose()
    if _may_be_huge(text):
        for doc in docs:
            check_size(doc.data, file)
    return docs


_DEEP_FLOW = re.compile(r"[\[{](?:\s*[\[{]){%d}" % (MAX_DEPTH // 2))
_DEEP_BLOCK = re.compile(r"^ {%d}" % (MAX_DEPTH * 2), re.MULTILINE)


def _may_be_huge(text: str) -> bool:
    """Cheap text test that decides whether the exact (slower) size walk is needed."""
    return "&" in text or bool(_DEEP_FLOW.search(text)) or bool(_DEEP_BLOCK.search(text))


def _load_json(text: str, file: str) -> Any:
    def bad_constant(name: str) -> Any:
        raise InputError(f"{name} is not a number gpuadmit accepts", file=file)

    try:
        data = json.loads(text, parse_constant=bad_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", file=file, line=exc.lineno, column=exc.colno) from None
    except RecursionError:
        raise InputError(f"nested deeper than {MAX_DEPTH} levels", file=file) from None
    return data


def check_size(data: Any, file: str) -> None:
    """Refuse a document whose aliases expand it past MAX_VALUES or MAX_DEPTH.

    Walks iteratively with a budget, so a bomb is caught after MAX_VALUES steps
    instead of being expanded.
    """
    budget = MAX_VALUES
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise InputError(
                f"document expands to more than {MAX_VALUES:,} values (YAML alias bomb?)", file=file
            )
        if depth > MAX_DEPTH:
            raise InputError(f"nested deeper than {MAX_DEPTH} levels", file=file)
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def position(data: Any, path: tuple[Any, ...]) -> tuple[int | None, int | None]:
    """Line and column of the deepest key of `path` that exists in `data`."""
    line: int | None = getattr(data, "line", None)
    column: int | None = getattr(data, "column", None)
    node = data
    for part in path:
        if isinstance(node, LineDict) and part in node.key_lines:
            line, column = node.key_lines[part]
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node.item_lines):
            line, column = node.item_lines[part]
            node = node[part]
        else:
            break
    return line, column

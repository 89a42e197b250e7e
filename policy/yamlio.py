"""Safe YAML/JSON loading that remembers where every key came from.

Plans are read with PyYAML's C parser when available. Three things the stock loader
does not do, and a linter must: remember the line of each key (findings point at it),
reject duplicate keys (the second silently wins otherwise), and refuse documents that
expand into absurd sizes through aliases (a "billion laughs" file).
"""

from __future__ import annotations

import bisect
import json
import json.scanner
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, shorten

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


class _Loader(_BaseLoader):  # type: ignore[misc]
    """PyYAML's C parser and composer; nodes are turned into data by `convert`."""

    def convert(self, root: yaml.Node) -> Any:
        """Nodes to LineDict/LineList/scalars, refusing duplicate keys.

        A direct walk instead of PyYAML's generator-based constructor: twice as fast on
        large plans. An alias yields the same object as its anchor (as in PyYAML), and
        `check_size` bounds what such sharing can expand to.
        """
        done: dict[int, Any] = {}
        scalar_constructors = self.yaml_constructors
        str_tag = "tag:yaml.org,2002:str"
        scalar_node, mapping_node = yaml.ScalarNode, yaml.MappingNode

        def walk(node: yaml.Node) -> Any:
            kind = type(node)
            if kind is scalar_node:
                if node.tag == str_tag:
                    return node.value
                constructor = scalar_constructors.get(node.tag)
                if constructor is None:
                    raise InputError(
                        f"unsupported YAML tag {node.tag}",
                        line=node.start_mark.line + 1,
                        column=node.start_mark.column + 1,
                    )
                try:
                    return constructor(self, node)
                except (ValueError, KeyError, TypeError, IndexError, yaml.YAMLError):
                    # `!!bool maybe`, `!!float x`, a 5,000-digit integer: one clear line.
                    raise InputError(
                        f"{shorten(node.value, 40)!r} is not a valid {node.tag.rpartition(':')[2]}",
                        line=node.start_mark.line + 1,
                        column=node.start_mark.column + 1,
                    ) from None
            known = done.get(id(node))
            if known is not None:
                return known
            if kind is mapping_node:
                mapping = LineDict()
                mapping.line = node.start_mark.line + 1
                mapping.column = node.start_mark.column + 1
                done[id(node)] = mapping
                if any(key.tag == "tag:yaml.org,2002:merge" for key, _ in node.value):
                    self.flatten_mapping(node)
                key_lines = mapping.key_lines
                for key_node, value_node in node.value:
                    key = key_node.value if key_node.tag == str_tag else walk(key_node)
                    try:
                        seen = key in key_lines
                    except TypeError:
                        raise InputError(
                            "a mapping key must be a scalar",
                            line=key_node.start_mark.line + 1,
                            column=key_node.start_mark.column + 1,
                        ) from None
                    mark = key_node.start_mark
                    if seen:
                        raise InputError(
                            f"duplicate key (first defined on line {key_lines[key][0]})",
                            line=mark.line + 1,
                            column=mark.column + 1,
                            field=str(key),
                        )
                    key_lines[key] = (mark.line + 1, mark.column + 1)
                    # Plain strings are most values: taken here, without a call.
                    if value_node.tag == str_tag:
                        mapping[key] = value_node.value
                        continue
                    try:
                        mapping[key] = walk(value_node)
                    except InputError as error:
                        error.field = error.field or str(key)
                        raise
                return mapping
            sequence = LineList()
            sequence.line = node.start_mark.line + 1
            sequence.column = node.start_mark.column + 1
            done[id(node)] = sequence
            sequence.extend(walk(child) for child in node.value)
            sequence.item_lines = [(c.start_mark.line + 1, c.start_mark.column + 1) for c in node.value]
            return sequence

        return walk(root)

    # PyYAML resolves every scalar's implicit type through generic machinery that also
    # serves path resolvers (which gpuadmit never registers); this is the same lookup,
    # without that detour, and with the answer remembered for repeated values.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is not yaml.ScalarNode:
            return str(super().resolve(kind, value, implicit))
        if not implicit[0]:
            return str(self.DEFAULT_SCALAR_TAG)
        tag = _RESOLVED.get(value)
        if tag is None:
            tag = _RESOLVED[value] = self._resolve_plain(value)
            if len(_RESOLVED) > 4096:
                _RESOLVED.clear()
        return tag

    def _resolve_plain(self, value: str) -> str:
        resolvers = self.yaml_implicit_resolvers
        for tag, regexp in resolvers.get(value[:1], []) + resolvers.get(None, []):
            if regexp.match(value):
                return str(tag)
        return str(self.DEFAULT_SCALAR_TAG)


#: Plain scalar -> resolved tag; the answer depends on the text alone.
_RESOLVED: dict[str, str] = {}
_Loader.yaml_path_resolvers = {}


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


#: Files larger than this are refused unread (a plan is kilobytes; 10,000 models ~ 2 MiB).
MAX_FILE_BYTES = 32 * 1024 * 1024


def read_text(path: Path, *, what: str = "", error: type[InputError] = InputError) -> str:
    """A file's text for any reader: size-limited, decoded, one clear error when it cannot be."""
    file = str(path)
    label = f"{what} " if what else ""
    too_big = f"{label}file is larger than gpuadmit reads (files up to {MAX_FILE_BYTES // 2**20} MiB)"
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise error(
                f"{label}file is {size / 2**20:.0f} MiB; gpuadmit reads files up to {MAX_FILE_BYTES // 2**20} MiB", file=file
            )
        # Read at most one byte past the limit: a pipe or a device has no size to check first.
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise error(f"cannot read {label}file: {exc.strerror}", file=file) from None
    if len(raw) > MAX_FILE_BYTES:
        raise error(too_big, file=file)
    try:
        return decode(raw, file)
    except InputError as exc:
        raise error(exc.message, file=file, line=exc.line) from None


def load_documents(text: str, file: str) -> list[Document]:
    """Every document of a YAML (or JSON, a YAML subset) text, with positions."""
    if _separators(text) > MAX_VALUES:
        raise InputError(f"more than {MAX_VALUES:,} values in one file; gpuadmit refuses it unread", file=file)
    if text.lstrip().startswith(("{", "[")):
        try:
            return [Document(_load_json(text, file), file, 0, 1)]
        except InputError:
            if file.lower().endswith(".json"):
                raise
            # Not JSON: YAML flow style (`{models: [...]}`) is read as YAML below.
    loader = _Loader(text)
    docs: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            data = loader.convert(node) if node is not None else None
            if data is not None:
                docs.append(Document(data, file, len(docs), node.start_mark.line + 1))
    except InputError as exc:
        exc.file = file
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        # Newer libyaml refuses deep nesting itself; say it the way gpuadmit's own check does.
        message = f"nested deeper than {MAX_DEPTH} levels" if "nesting depth" in problem else f"invalid YAML: {problem}"
        raise InputError(
            message,
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


def _separators(text: str) -> int:
    """An upper bound on the values a text can hold, counted before anything is built."""
    return text.count(",") + text.count("\n")


_DEEP_FLOW = re.compile(r"[\[{](?:\s*[\[{]){%d}" % (MAX_DEPTH // 2))
_DEEP_BLOCK = re.compile(r"^ {%d}" % (MAX_DEPTH * 2), re.MULTILINE)


def _may_be_huge(text: str) -> bool:
    """Cheap text test that decides whether the exact (slower) size walk is needed."""
    return "&" in text or bool(_DEEP_FLOW.search(text)) or bool(_DEEP_BLOCK.search(text))


def _load_json(text: str, file: str) -> Any:
    """JSON with the positions of its keys and items, duplicate keys refused (as in YAML)."""

    def bad_constant(name: str) -> Any:
        raise InputError(f"{name} is not a number gpuadmit accepts", file=file)

    try:
        return _PositionedJSONDecoder(text, file, bad_constant).decode(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", file=file, line=exc.lineno, column=exc.colno) from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise InputError(f"invalid JSON number: {shorten(str(exc), 120)}", file=file) from None
    except RecursionError:
        raise InputError(f"nested deeper than {MAX_DEPTH} levels", file=file) from None


_JSON_SPACE_RE = re.compile(r"[ \t\n\r]*")
#: The standard library's pure-Python scanner and C string scanner (not in typeshed).
_py_make_scanner: Any = getattr(json.scanner, "py_make_scanner")  # noqa: B009 - typed Any on purpose
_scanstring: Any = getattr(json.decoder, "scanstring")  # noqa: B009 - typed Any on purpose


def _skip_space(s: str, end: int) -> int:
    match = _JSON_SPACE_RE.match(s, end)
    return match.end() if match else end


class _PositionedJSONDecoder(json.JSONDecoder):
    """The standard library's JSON grammar, building LineDict/LineList with 1-based positions.

    Strings and numbers are still scanned by the standard library (strings in C); only
    objects and arrays are walked here, to note where each key and item starts. About
    four times slower than `json.loads`, which is milliseconds for any real plan.
    """

    def __init__(self, text: str, file: str, parse_constant: Any) -> None:
        super().__init__(parse_constant=parse_constant)
        self.file = file
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.parse_object = self._object
        self.parse_array = self._array
        self.scan_once = _py_make_scanner(self)

    def _position(self, offset: int) -> tuple[int, int]:
        before = bisect.bisect_left(self.newlines, offset)
        line_start = self.newlines[before - 1] + 1 if before else 0
        return before + 1, offset - line_start + 1

    def _object(self, s_and_end: tuple[str, int], strict: bool, scan_once: Any, *_: Any) -> tuple[LineDict, int]:
        s, end = s_and_end
        data = LineDict()
        data.line, data.column = self._position(end - 1)
        end = _skip_space(s, end)
        if s[end : end + 1] == "}":
            return data, end + 1
        while True:
            if s[end : end + 1] != '"':
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", s, end)
            key_at = self._position(end)
            key, end = _scanstring(s, end + 1, strict)
            if key in data.key_lines:
                raise InputError(
                    f"duplicate key (first defined on line {data.key_lines[key][0]})",
                    file=self.file,
                    line=key_at[0],
                    column=key_at[1],
                    field=key,
                )
            end = _skip_space(s, end)
            if s[end : end + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", s, end)
            end = _skip_space(s, end + 1)
            try:
                value, end = scan_once(s, end)
            except StopIteration as err:
                raise json.JSONDecodeError("Expecting value", s, err.value) from None
            except ValueError as err:  # an integer of more digits than Python converts
                if isinstance(err, json.JSONDecodeError):
                    raise
                line, column = self._position(end)
                raise InputError(
                    f"not a number gpuadmit accepts: {shorten(str(err), 80)}",
                    file=self.file,
                    line=line,
                    column=column,
                    field=key,
                ) from None
            data.key_lines[key] = key_at
            data[key] = value
            end = _skip_space(s, end)
            nextchar = s[end : end + 1]
            if nextchar == "}":
                return data, end + 1
            if nextchar != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", s, end)
            end = _skip_space(s, end + 1)

    def _array(self, s_and_end: tuple[str, int], scan_once: Any) -> tuple[LineList, int]:
        s, end = s_and_end
        data = LineList()
        data.line, data.column = self._position(end - 1)
        end = _skip_space(s, end)
        if s[end : end + 1] == "]":
            return data, end + 1
        while True:
            start = end
            try:
                value, end = scan_once(s, end)
            except StopIteration as err:
                raise json.JSONDecodeError("Expecting value", s, err.value) from None
            data.append(value)
            data.item_lines.append(self._position(start))
            end = _skip_space(s, end)
            nextchar = s[end : end + 1]
            if nextchar == "]":
                return data, end + 1
            if nextchar != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", s, end)
            end = _skip_space(s, end + 1)


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
            raise InputError(f"document expands to more than {MAX_VALUES:,} values (YAML alias bomb?)", file=file)
        if depth > MAX_DEPTH:
            raise InputError(f"nested deeper than {MAX_DEPTH} levels", file=file)
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


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

"""One Triton `config.pbtxt`: parsed against Triton's own `ModelConfig` message.

Triton's protobuf schema ships in the `tritonclient` wheel as `grpc/model_config_pb2.py`.
The file is loaded directly, because importing the `tritonclient.grpc` package needs
grpcio, which gpuadmit does not. Parsing with that schema means a typo gets the error
Triton itself would give, with its line and column.

Line numbers of fields come from a small scan of the same text (protobuf's Python
parser keeps none), so findings about a model point at the line that sets the value.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ..closest import did_you_mean
from ..errors import InputError, shorten
from ..yamlio import read_text

#: An unfilled template placeholder, as the TensorRT-LLM backend ships its configs.
PLACEHOLDER = re.compile(r"\$\{([^}\s]*)\}")
_TOKEN = re.compile(
    r'(?P<string>"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\')'
    r"|(?P<comment>#[^\n]*)"
    r"|(?P<punct>[{}\[\]<>:,;])"
    r"|(?P<word>[^\s{}\[\]<>:,;\"'#]+)"
)


@functools.lru_cache(maxsize=1)
def model_config_pb2() -> ModuleType:
    """Triton's `model_config_pb2`, loaded from the installed tritonclient wheel."""
    try:
        spec = importlib.util.find_spec("tritonclient")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "grpc" / "model_config_pb2.py"
        if path.is_file():
            module_spec = importlib.util.spec_from_file_location("_gpuadmit_triton_model_config_pb2", path)
            if module_spec is None or module_spec.loader is None:
                break
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            return module
    raise InputError(
        "reading Triton configs needs Triton's model_config_pb2 from the `tritonclient` package (pip install tritonclient)"
    )


@dataclass
class ConfigIssue:
    """Something Triton would refuse, or gpuadmit cannot use, at a line of the config."""

    message: str
    line: int | None
    column: int | None = None
    severity: str = "error"


@dataclass
class ParsedConfig:
    """A config.pbtxt: the message (None when it does not parse) and where its fields are."""

    file: str
    config: Any | None
    lines: dict[str, tuple[int, int]] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)
    placeholders: list[tuple[str, int, int]] = field(default_factory=list)
    text_lines: list[str] = field(default_factory=list)

    def line_of(self, *paths: str) -> tuple[int, int] | None:
        """(line, column) of the first of `paths` that the text sets (`a.b`, `a[0].b`)."""
        for path in paths:
            if path in self.lines:
                return self.lines[path]
        return None


def parse(path: Path) -> ParsedConfig:
    """Parse one config.pbtxt; unusable text becomes issues, never an exception."""
    from google.protobuf import text_format

    file = str(path)
    text = read_text(path)
    pb2 = model_config_pb2()
    parsed = ParsedConfig(file=file, config=None, placeholders=find_placeholders(text), text_lines=text.splitlines())
    config = pb2.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        if not parsed.placeholders:  # a template fails on its placeholders: reported once, as such
            parsed.issues.append(_parse_issue(exc, pb2))
        return parsed
    parsed.config = config
    parsed.lines = field_lines(text)
    parsed.issues.extend(_triton_checks(config, parsed))
    return parsed


def find_placeholders(text: str) -> list[tuple[str, int, int]]:
    """(name, line, column) of every `${...}` outside comments."""
    found: list[tuple[str, int, int]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if "${" not in line:
            continue
        code = _without_comment(line)
        found.extend((m.group(1), number, m.start() + 1) for m in PLACEHOLDER.finditer(code))
    return found


def _without_comment(line: str) -> str:
    quote: str | None = None
    escaped = False
    for n, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote:
            escaped = True
        elif quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[:n]
    return line


_NO_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "([^"]+)"')


def _parse_issue(exc: Any, pb2: ModuleType) -> ConfigIssue:
    """Triton's parse error, with a did-you-mean for a misspelt field."""
    message = str(exc)
    # ParseError's text starts with "line:column : "; the finding carries them apart.
    message = re.sub(r"^\d+:\d+ : ", "", message).rstrip(".")
    match = _NO_FIELD.search(message)
    if match:
        known = _field_names(pb2, match.group(1))
        message = f"{match.group(2)}: {message}" + did_you_mean(match.group(2), known)
    line = exc.GetLine() if hasattr(exc, "GetLine") else None
    column = exc.GetColumn() if hasattr(exc, "GetColumn") else None
    return ConfigIssue(shorten(f"not a valid Triton model config: {message}"), line, column)


def _field_names(pb2: ModuleType, full_name: str) -> list[str]:
    try:
        descriptor = pb2.DESCRIPTOR.pool.FindMessageTypeByName(full_name)
    except KeyError:
        return []
    return [f.name for f in descriptor.fields]


def field_lines(text: str) -> dict[str, tuple[int, int]]:
    """Dotted field paths (`dynamic_batching.default_queue_policy.max_queue_size`, and
    `instance_group[1].count` for repeated messages) to the (line, column) that sets them.

    Only for positions: the text has already parsed, so the scan can be forgiving.
    """
    tokens: list[tuple[str, str, int, int]] = []
    line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or ""
        if kind == "comment":
            continue
        offset = match.start()
        line = _bisect(line_starts, offset)
        tokens.append((kind, match.group(), line + 1, offset - line_starts[line] + 1))
    lines: dict[str, tuple[int, int]] = {}
    _scan_message(tokens, 0, "", lines)
    return lines


def _bisect(starts: list[int], offset: int) -> int:
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _scan_message(tokens: list[tuple[str, str, int, int]], i: int, prefix: str, lines: dict[str, tuple[int, int]]) -> int:
    counts: dict[str, int] = {}
    n = len(tokens)
    while i < n:
        kind, value, line, column = tokens[i]
        if value in ("}", ">"):
            return i + 1
        if kind != "word":
            i += 1
            continue
        name = value
        i += 1
        if i < n and tokens[i][1] == ":":
            i += 1
        here = (line, column)
        lines.setdefault(prefix + name, here)
        if i < n and tokens[i][1] in ("{", "<"):
            index = counts.get(name, 0)
            counts[name] = index + 1
            path = f"{prefix}{name}[{index}]"
            lines.setdefault(path, here)
            i = _scan_message(tokens, i + 1, path + ".", lines)
            if index == 0:
                _alias_first(lines, path + ".", prefix + name + ".")
        elif i < n and tokens[i][1] == "[":
            i += 1
            while i < n and tokens[i][1] != "]":
                if tokens[i][1] in ("{", "<"):
                    index = counts.get(name, 0)
                    counts[name] = index + 1
                    path = f"{prefix}{name}[{index}]"
                    lines.setdefault(path, (tokens[i][2], tokens[i][3]))
                    i = _scan_message(tokens, i + 1, path + ".", lines)
                    if index == 0:
                        _alias_first(lines, path + ".", prefix + name + ".")
                else:
                    i += 1
            i += 1
        else:
            i += 1
            while i < n and tokens[i][0] == "string" and tokens[i - 1][0] == "string":
                i += 1  # adjacent strings concatenate
    return i


def _alias_first(lines: dict[str, tuple[int, int]], indexed: str, plain: str) -> None:
    """`a[0].b` is also reachable as `a.b`: most messages appear once."""
    for key, pos in list(lines.items()):
        if key.startswith(indexed):
            lines.setdefault(plain + key[len(indexed) :], pos)


def _triton_checks(config: Any, parsed: ParsedConfig) -> list[ConfigIssue]:
    """What Triton refuses at load although the text parses (its model_config_utils checks
    that bear on scheduling), with Triton's wording."""
    issues: list[ConfigIssue] = []
    name = config.name or Path(parsed.file).parent.name
    if config.HasField("dynamic_batching"):
        batching = config.dynamic_batching
        levels = batching.priority_levels
        if levels > 0 and not 1 <= batching.default_priority_level <= levels:
            pos = parsed.line_of("dynamic_batching.default_priority_level", "dynamic_batching.priority_levels")
            issues.append(
                ConfigIssue(
                    f"default priority level must be in range [1, {levels}] for {name} (got {batching.default_priority_level})",
                    *(pos or (None, None)),
                )
            )
        for level in sorted(batching.priority_queue_policy):
            if not 1 <= level <= levels:
                pos = map_key_line(parsed, "dynamic_batching.priority_queue_policy", level) or parsed.line_of(
                    "dynamic_batching.priority_queue_policy"
                )
                issues.append(
                    ConfigIssue(
                        f"priority queue policy must have priority level in range [1, {levels}] for {name} (got key {level})",
                        *(pos or (None, None)),
                    )
                )
        if batching.preserve_ordering:
            delay = model_config_pb2().ModelQueuePolicy.DELAY
            policies = [batching.default_queue_policy, *batching.priority_queue_policy.values()]
            if any(p.timeout_action == delay for p in policies):
                pos = parsed.line_of("dynamic_batching.preserve_ordering")
                issues.append(
                    ConfigIssue(
                        f"Queue policy can not have DELAY as timeout action when 'preserve_ordering' is true for {name}",
                        *(pos or (None, None)),
                    )
                )
    for n, group in enumerate(config.instance_group):
        if group.count < 0:
            pos = parsed.line_of(f"instance_group[{n}].count", f"instance_group[{n}]")
            issues.append(
                ConfigIssue(f"instance group count must be >= 0 for {name} (got {group.count})", *(pos or (None, None)))
            )
    return issues


def map_key_line(parsed: ParsedConfig, path: str, key: int | str) -> tuple[int, int] | None:
    """Line of the map entry whose `key` is `key` (map entries are repeated messages)."""
    wanted = re.escape(f'"{key}"') if isinstance(key, str) else rf"{key}\b"
    n = 0
    while f"{path}[{n}]" in parsed.lines:
        pos = parsed.lines.get(f"{path}[{n}].key")
        if pos and pos[0] - 1 < len(parsed.text_lines):
            if re.search(rf"\bkey\s*:?\s*{wanted}", parsed.text_lines[pos[0] - 1]):
                return pos
        n += 1
    return None

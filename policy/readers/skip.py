"""Files found among serving configuration that are not serving configuration gpuadmit can judge.

- An unrendered Helm template (`{{ .Values.x }}`) is not YAML yet: it is skipped with an
  info note that names it and says how to judge it (`helm template … | gpuadmit lint -`).
- A file given by name whose suffix is not one gpuadmit reads (`README.md`, `serve.py`) is
  skipped with an info note, as a folder scan skips it without one.
- JSON with comments (`tsconfig.json`, `.vscode/settings.json`, devcontainer files) is not
  JSON: when it is neither a plan nor a Kubernetes object once its comments are removed,
  it is skipped without a word, like CI workflows and compose files. A plan or manifest
  with comments still fails with the JSON parser's own error.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import InputError

#: A Go template action: `{{ ... }}` on one line (Helm, Kustomize-less charts, gomplate).
_TEMPLATE_ACTION = re.compile(r"\{\{-?\s*[^{}\n]*?-?\}\}")


_TRAILING_COMMA = re.compile(r",\s*[}\]]")


class Skipped(InputError):
    """A file that is not gpuadmit's to judge; `note` says so when the user should know."""

    def __init__(self, message: str, *, file: str | None = None, note: bool = True) -> None:
        super().__init__(message, file=file)
        self.note = note


def unrendered_template(text: str) -> bool:
    """Whether `text` holds template actions that a renderer must fill first."""
    return "{{" in text and _TEMPLATE_ACTION.search(text) is not None


def template_note(file: str) -> Skipped:
    return Skipped(
        "unrendered Helm template ({{ }}): skipped; judge the rendered output with `helm template … | gpuadmit lint -`",
        file=file,
    )


#: The files gpuadmit reads as serving configuration, by suffix; a file without a suffix is
#: read as YAML (a plan named `plan`, a rendered chart saved without one).
READ_SUFFIXES = frozenset({".yaml", ".yml", ".json", ".pbtxt"})


def foreign_suffix_note(file: str, suffix: str) -> Skipped:
    """A file given by name that is not serving configuration by its suffix (`README.md`,
    `serve.py`): said in the output, never read as YAML into a parse error."""
    return Skipped(
        f"not serving configuration ({suffix} file): skipped; gpuadmit reads .yaml, .yml, .json and Triton config.pbtxt",
        file=file,
    )


def not_ours_with_comments(text: str) -> bool:
    """JSON with comments (or trailing commas) that, once they are removed, is not a plan or a
    Kubernetes object: a tool's settings file, not serving configuration."""
    from . import kubernetes, native

    if "//" not in text and "/*" not in text and not _TRAILING_COMMA.search(text):
        return False
    try:
        data: Any = json.loads(strip_json_comments(text))
    except (ValueError, RecursionError):
        return False
    return not (native.is_plan(data) or kubernetes.is_object(data) or _holds_objects(data))


def _holds_objects(data: Any) -> bool:
    """A Kubernetes `List` or an array of objects."""
    items = data.get("items") if isinstance(data, dict) else data
    from . import kubernetes

    return isinstance(items, list) and any(kubernetes.is_object(item) for item in items)


def strip_json_comments(text: str) -> str:
    """`//` and `/* */` comments and trailing commas removed, strings left intact (JSONC)."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        char = text[i]
        if in_string:
            out.append(char)
            if char == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if char == '"':
                in_string = False
            i += 1
        elif char == '"':
            in_string = True
            out.append(char)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(char)
            i += 1
    return _TRAILING_COMMA.sub(lambda m: m.group(0)[1:], "".join(out))

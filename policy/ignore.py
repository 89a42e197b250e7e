"""`ignore:` in `.gpuadmit.yaml`: path globs, relative to the config file, that gpuadmit never reads.

Like kube-linter's `ignorePaths` and Checkov's `--skip-path`: `*` and `?` stay inside one
path segment, `**` crosses any number of them, a pattern that names a folder ignores
everything under it, and a pattern without `/` matches a file or folder name anywhere
(`*.tmpl.yaml`, `charts`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts) + "(?:/.*)?")


class IgnoreList:
    """Callable: whether a path is ignored."""

    def __init__(self, patterns: Sequence[str], base: Path) -> None:
        self.patterns = [p.strip().removeprefix("./").rstrip("/") for p in patterns if p.strip()]
        self.base = base.resolve()

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __call__(self, path: Path) -> bool:
        try:
            relative = path.resolve().relative_to(self.base).as_posix()
        except ValueError:
            return False  # outside the project: not ours to ignore
        for pattern in self.patterns:
            if "/" in pattern:
                if _compile(pattern).fullmatch(relative):
                    return True
            elif any(_compile(pattern).fullmatch(part) for part in relative.split("/")):
                return True
        return False

"""A cache of checked and compiled rule sets, so the pre-commit path starts fast.

Loading rules validates every file against the rule schema and type-checks and
compiles each expression: tens of milliseconds, most of it importing the schema
validator. The result depends only on the rule files' bytes, the configured overrides,
gpuadmit's own code and data (every file of the package: the facts schema, the fact
builder, the translator...) and the CEL library's version, so it is cached under a hash
of all of them: no list of files to keep up to date. A cache that cannot be read
or written (read-only file system, corrupt entry) is ignored: the slow path is
always correct. Entries are JSON, never pickles, so a cache file cannot run code.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from . import __version__

#: What in the package is hashed: its code and its data (not caches or compiled files).
_PACKAGE_SUFFIXES = {".py", ".yaml", ".yml", ".json", ".proto"}


def cache_dir() -> Path | None:
    """`$GPUADMIT_CACHE_DIR`, else `$XDG_CACHE_HOME/gpuadmit`, else `~/.cache/gpuadmit`; `off` disables."""
    configured = os.environ.get("GPUADMIT_CACHE_DIR")
    if configured:
        return None if configured == "off" else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "gpuadmit"


@functools.lru_cache(maxsize=1)
def package_digest(package: Path | None = None) -> str:
    """A hash of every code and data file of the gpuadmit package (or of the folder
    `package`), and of the CEL library build. Computed once per process.

    The CEL library is identified by its extension modules' names, sizes and times (a
    compiled program is only read back by the build that wrote it); not by
    importlib.metadata, whose import alone costs more than the rest of this.
    """
    import importlib.util

    digest = hashlib.sha256(__version__.encode())
    spec = importlib.util.find_spec("cel_expr_python")
    for folder in spec.submodule_search_locations or [] if spec else []:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_file():
                stat = entry.stat()
                digest.update(f"{entry.name}:{stat.st_size}:{stat.st_mtime_ns}\0".encode())
    here = package or Path(__file__).parent
    for path in sorted(here.rglob("*")):
        if path.suffix in _PACKAGE_SUFFIXES and "__pycache__" not in path.parts and path.is_file():
            digest.update(str(path.relative_to(here)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(dirs: list[Path], overrides: dict[str, Any]) -> str:
    digest = hashlib.sha256(package_digest().encode())
    for directory in dirs:
        digest.update(str(directory.resolve()).encode())
        for path in sorted(directory.iterdir()) if directory.is_dir() else []:
            digest.update(path.name.encode())
            if path.is_file():
                digest.update(path.read_bytes())
    digest.update(json.dumps(overrides, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def read(key: str) -> list[dict[str, Any]] | None:
    folder = cache_dir()
    if folder is None:
        return None
    try:
        entries = json.loads((folder / f"rules-{key}.json").read_text(encoding="utf-8"))
        for entry in entries:
            entry["program"] = base64.b64decode(entry["program"]) if entry["program"] else None
        return entries  # type: ignore[no-any-return]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(key: str, entries: list[dict[str, Any]]) -> None:
    folder = cache_dir()
    if folder is None:
        return
    payload = [
        {**entry, "program": base64.b64encode(entry["program"]).decode() if entry["program"] else None} for entry in entries
    ]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".rules-{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        tmp.replace(folder / f"rules-{key}.json")
    except OSError:
        pass

"""Changed files to the units they belong to: what a pre-commit hook must judge.

A staged `config.pbtxt` is judged with its whole Triton repository, a staged manifest with
every domain its objects join (the other files of the repository that share its GPUs), a
staged plan with the workloads bound to it. So the repository is read from its root, grouped
by domain as `gpuadmit lint ROOT` would, and only the plans a changed file takes part in are
judged; unreadable files are reported only when they are among the changed ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .readers import ReadResult, read_paths
from .readers.files import Files
from .source import PlanSource

if TYPE_CHECKING:
    from .api import Linter
    from .report import Report


def read_units(changed: Sequence[str | Path], root: Path, linter: Linter, files_roots: Sequence[str | Path] = ()) -> ReadResult:
    """The plans (domains) of `root` that a changed file is part of."""
    targets = {Path(path).resolve() for path in changed}
    read = read_paths([root], ignore=linter.config.ignored(), files=Files.within([root], files_roots))
    read.sources = [source for source in read.sources if _touches(source, targets)]
    read.findings = [f for f in read.findings if f.file is not None and _within(Path(f.file).resolve(), targets)]
    return read


def lint_changed(
    linter: Linter, changed: Sequence[str | Path], root: Path | None = None, files_roots: Sequence[str | Path] = ()
) -> Report:
    from .api import gc_paused

    with gc_paused():
        read = read_units(changed, root or Path("."), linter, files_roots)
        return linter.lint_sources(read.sources, read)


def _files(source: PlanSource) -> set[Path]:
    files = {source.file} if source.file else set()
    files.update(pos[2] for pos in source.positions.values() if len(pos) > 2)
    return {Path(str(file)).resolve() for file in files}


def _touches(source: PlanSource, targets: set[Path]) -> bool:
    """A changed file is one of the source's files, or lies in its folder (a Triton repository)."""
    return any(_within(target, _files(source)) for target in targets)


def _within(path: Path, places: set[Path]) -> bool:
    return path in places or any(place in path.parents for place in places if place.is_dir())

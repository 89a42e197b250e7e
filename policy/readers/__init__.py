"""Readers: any input file or folder to PlanSources. Formats are detected, not declared.

- YAML/JSON documents that are plans (`kind: ServingPlan`, or the seed form) -> native
- YAML/JSON Kubernetes objects (Deployments, Pods, InferenceServices, ...) -> kubernetes
- Triton model repositories (`<model>/config.pbtxt`) -> triton

Every reader raises `InputError` for unusable input; `read_paths` turns those into
`schema` findings so one bad file does not hide the verdict on the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InputError
from ..findings import Finding
from ..source import PlanSource
from ..yamlio import Document, load_documents, read_text

PLAN_SUFFIXES = {".yaml", ".yml", ".json"}
TRITON_CONFIG = "config.pbtxt"
SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache", ".pytest_cache"}


@dataclass
class ReadResult:
    sources: list[PlanSource] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    files: int = 0


def input_finding(error: InputError, severity: str = "error") -> Finding:
    """An unusable-input error as a `schema` finding."""
    return Finding(
        rule="schema",
        severity="error" if severity == "error" else "warning",
        message=error.message if not error.field else f"{error.field}: {error.message}",
        file=error.file,
        line=error.line,
        column=error.column,
        fix="fix the input so it matches the plan schema (`gpuadmit schema`)",
    )


def read_paths(paths: Sequence[str | Path]) -> ReadResult:
    """Read every file and folder given; unreadable input becomes `schema` findings."""
    result = ReadResult()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            result.findings.append(input_finding(InputError("no such file or folder", file=str(path))))
            continue
        targets = list(_walk(path)) if path.is_dir() else [path]
        for target in targets:
            result.files += 1
            try:
                result.sources.extend(read_file(target))
            except InputError as error:
                if error.file is None:
                    error.file = str(target)
                result.findings.append(input_finding(error))
            except RecursionError:
                result.findings.append(input_finding(InputError("nested too deeply to read", file=str(target))))
            except Exception as error:  # noqa: BLE001 - a reader bug must be neither a traceback nor a pass
                message = f"could not be read: internal error {type(error).__name__}: {error}; please report it"
                result.findings.append(input_finding(InputError(message, file=str(target))))
    return result


def _walk(folder: Path) -> Iterable[Path]:
    """Plan and manifest files under `folder`; a Triton repository is yielded as its folder."""
    triton_repos: set[Path] = set()
    for path in sorted(folder.rglob("*")):
        if any(part in SKIP_DIRS for part in path.relative_to(folder).parts):
            continue
        if path.name == TRITON_CONFIG and path.is_file():
            triton_repos.add(path.parent.parent)
    yield from sorted(triton_repos)
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).parts
        if any(part in SKIP_DIRS for part in rel) or not path.is_file():
            continue
        if path.suffix.lower() in PLAN_SUFFIXES and not any(path.is_relative_to(r) for r in triton_repos):
            yield path


def read_file(path: Path) -> list[PlanSource]:
    """The plans in one file (or Triton repository folder)."""
    if path.is_dir() or path.name == TRITON_CONFIG or path.suffix == ".pbtxt":
        from . import triton

        return triton.read(path)
    file = str(path)
    text = read_text(path)
    if not text.strip():
        raise InputError("empty file", file=file)
    docs = load_documents(text, file)
    return read_documents(docs, file, default_name=path.stem)


def read_documents(docs: list[Document], file: str, *, default_name: str = "plan") -> list[PlanSource]:
    """Plans from already-parsed documents: native plans one by one, Kubernetes objects together."""
    from . import kubernetes, native

    sources: list[PlanSource] = []
    objects: list[Document] = []
    for doc in docs:
        if native.is_plan(doc.data):
            name = default_name if len(docs) == 1 else f"{default_name}-{doc.index}"
            source = native.read_plan_document(doc, default_name=name)
            if source.plan.triton is not None:  # a plan over a Triton repository
                from . import triton

                source = triton.resolve_plan(source, Path(file).parent)
            sources.append(source)
        elif kubernetes.is_object(doc.data):
            objects.append(doc)
        # Anything else (CI workflows, Helm values, ...) is not ours to judge: skipped.
    if objects:
        sources.extend(kubernetes.read_objects(objects, file, default_name=default_name))
    return sources

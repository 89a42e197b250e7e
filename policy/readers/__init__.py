"""Readers: any input file or folder to PlanSources. Formats are detected, not declared.

- YAML/JSON documents that are plans (`kind: ServingPlan`, or the seed form) -> native
- YAML/JSON Kubernetes objects (Deployments, Pods, InferenceServices, ...) -> kubernetes
- Triton model repositories (`<model>/config.pbtxt`) -> triton

Every reader raises `InputError` for unusable input; `read_paths` turns those into
`schema` findings so one bad file does not hide the verdict on the others.

Reading the files and folders a caller names is what these functions do; following a
reference *inside* an input to other files (a Triton model repository) needs a `Files`
as well (see `policy.readers.files`): the command line passes one, admission does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..errors import InputError
from ..findings import Finding
from ..source import PlanSource
from ..domains import Batch
from ..yamlio import Document, load_documents, read_text
from .files import OUTSIDE_HINT, Files, not_followed
from .skip import READ_SUFFIXES, Skipped, foreign_suffix_note, not_ours_with_comments, template_note, unrendered_template

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


STDIN = "-"
#: What input nested beyond Python's recursion limit is told (a `schema` error, like any bad input).
TOO_DEEP = "nested too deeply to read"


def read_paths(
    paths: Sequence[str | Path],
    *,
    ignore: Callable[[Path], bool] | None = None,
    neighbours: Sequence[Batch] = (),
    files: Files | None = None,
) -> ReadResult:
    """Read every file and folder given (`-`: standard input); unreadable input becomes
    `schema` findings. Kubernetes objects of every file (and `neighbours`, a cluster's)
    are grouped by sharing domain before plans are built (policy.domains). With `files`,
    model repositories the inputs name are read too."""
    result = ReadResult()
    batches: list[Batch] = list(neighbours)
    order: list[int] = []
    for raw in paths:
        if str(raw) == STDIN:
            result.files += 1
            _read_stdin(result, batches, order, files)
            continue
        path = Path(raw)
        if not path.exists():
            result.findings.append(input_finding(InputError("no such file or folder", file=str(path))))
            continue
        if ignore is not None and ignore(path):
            continue
        targets = [t for t in _walk(path) if ignore is None or not ignore(t)] if path.is_dir() else [path]
        for target in targets:
            result.files += 1
            if files is not None and target is not path and not files.permits(target):
                # Found by walking a folder, a link out of the folders being linted (a pull
                # request may add one): not read, its content never quoted, and said. A path
                # named on the command line is read as named (`/dev/stdin`, a pipe).
                result.findings.append(
                    not_followed(
                        str(target),
                        f"it is a link out of the folders being linted, so it was not read; {OUTSIDE_HINT}",
                        severity="warning",
                        file=str(target),
                        line=None,
                    )
                )
                continue
            objects: list[Document] = []
            try:
                found = read_file(target, objects=objects, files=files)
                result.sources.extend(found)
                order.extend([len(batches)] * len(found))
                if objects:
                    batches.append(Batch(str(target), objects, _stem(target), order=len(batches)))
            except Skipped as skipped:
                if skipped.note:
                    result.findings.append(skipped_finding(skipped))
            except InputError as error:
                for each in error.each():  # every schema error of the file, in one run
                    if each.file is None:
                        each.file = str(target)
                    result.findings.append(input_finding(each))
            except RecursionError:
                result.findings.append(input_finding(InputError(TOO_DEEP, file=str(target))))
            except Exception as error:  # noqa: BLE001 - a reader bug must be neither a traceback nor a pass
                message = f"could not be read: internal error {type(error).__name__}: {error}; please report it"
                result.findings.append(input_finding(InputError(message, file=str(target))))
    _group(result, batches, order, files)
    return result


def _stem(path: Path) -> str:
    return path.stem if path.is_file() or path.suffix else path.name


def _read_stdin(result: ReadResult, batches: list[Batch], order: list[int], files: Files | None) -> None:
    """Standard input: multi-document YAML or JSON, as `helm template` and `kustomize build` print."""
    import sys

    from ..yamlio import MAX_FILE_BYTES, decode

    try:
        raw = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise InputError(f"more than {MAX_FILE_BYTES // 2**20} MiB on standard input", file=STDIN_NAME)
        text = decode(raw, STDIN_NAME)
        if not text.strip():
            raise InputError("nothing on standard input", file=STDIN_NAME)
        objects: list[Document] = []
        docs = load_documents(text, STDIN_NAME)
        found = read_documents(docs, STDIN_NAME, default_name="stdin", objects=objects, files=files)
        result.sources.extend(found)
        order.extend([len(batches)] * len(found))
        if objects:
            batches.append(Batch(STDIN_NAME, objects, "stdin", order=len(batches)))
    except InputError as error:
        for each in error.each():
            each.file = each.file or STDIN_NAME
            result.findings.append(input_finding(each))


STDIN_NAME = "<stdin>"


def _group(result: ReadResult, batches: list[Batch], order: list[int], files: Files | None) -> None:
    """Kubernetes objects to plans, one per sharing domain, reported in input order."""
    if not batches:
        return
    from ..domains import group_with_plans

    # A cluster's ServingPlans are the plans its workloads and the given ones bind to.
    plans, grouped = group_with_plans(batches, result.sources, files=files)
    ranked = [(o, n, s) for n, (o, s) in enumerate(zip(order, plans))]
    ranked += [(o, len(plans) + n, s) for n, (o, s) in enumerate(zip(grouped.order, grouped.sources))]
    result.sources = [s for _, _, s in sorted(ranked, key=lambda item: (item[0], item[1]))]
    result.findings.extend(grouped.findings)


def skipped_finding(skipped: Skipped) -> Finding:
    """A file gpuadmit did not judge, said in the output (info: it never fails a run)."""
    return Finding(rule="schema", severity="info", message=skipped.message, file=skipped.file)


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


def read_file(path: Path, *, objects: list[Document] | None = None, files: Files | None = None) -> list[PlanSource]:
    """The plans in one file (or Triton repository folder). With `objects`, Kubernetes
    objects are collected there for grouping by domain instead of read as this file's plan."""
    if path.is_dir() or path.name == TRITON_CONFIG or path.suffix == ".pbtxt":
        from . import triton

        return triton.read(path)
    file = str(path)
    if path.suffix and path.suffix.lower() not in READ_SUFFIXES:
        raise foreign_suffix_note(file, path.suffix)
    text = read_text(path)
    if not text.strip():
        raise InputError("empty file", file=file)
    if unrendered_template(text):
        raise template_note(file)
    try:
        docs = load_documents(text, file)
    except InputError:
        if path.suffix.lower() == ".json" and not_ours_with_comments(text):
            raise Skipped("JSON with comments, not serving configuration", file=file, note=False) from None
        raise
    return read_documents(docs, file, default_name=path.stem, objects=objects, files=files)


def read_documents(
    docs: list[Document],
    file: str,
    *,
    default_name: str = "plan",
    objects: list[Document] | None = None,
    files: Files | None = None,
) -> list[PlanSource]:
    """Plans from already-parsed documents: native plans one by one, Kubernetes objects together
    (or, with `objects`, collected there to be grouped by domain with other files' objects).
    Without `files`, model repositories they name become `repository-read` findings."""
    from . import native  # the Kubernetes reader is imported only for a document that is no plan

    sources: list[PlanSource] = []
    collected: list[Document] = []
    for doc in docs:
        if native.is_plan(doc.data):
            name = default_name if len(docs) == 1 else f"{default_name}-{doc.index}"
            source = native.read_plan_document(doc, default_name=name)
            if source.plan.triton is not None:  # a plan over a Triton repository
                from . import triton

                source = triton.resolve_plan(source, files)
            sources.append(source)
            continue
        from . import kubernetes

        if kubernetes.is_object(doc.data):
            collected.append(doc)
        # Anything else (CI workflows, Helm values, ...) is not ours to judge: skipped.
    if collected and objects is not None:
        objects.extend(collected)
    elif collected:
        from . import kubernetes

        sources.extend(kubernetes.read_objects(collected, file, default_name=default_name, files=files))
    return sources

"""The `gpuadmit suggest` command: its options and what it prints."""

from __future__ import annotations

import argparse
import sys

EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="plans, Triton repositories, Kubernetes manifests")
    parser.add_argument("--format", "-f", choices=["text", "json"], default="text")
    parser.add_argument("--write", action="store_true", help="apply the changes to native plan files in place")
    parser.add_argument("--move", action="store_true", help="models may move to other GPUs or MIG slices (pinned ones never)")
    parser.add_argument(
        "--time-limit", type=float, default=10.0, metavar="SECONDS", help="time budget of each solve (default 10)"
    )
    parser.add_argument("--optimize", action="store_true", help="also improve plans that already pass")
    parser.add_argument("--capacity", default="declared", metavar="declared|nvml|FILE", help="where real GPU capacity comes from")
    parser.add_argument("--rules", action="append", default=[], metavar="DIR", help="extra rule folder (repeatable)")
    parser.add_argument("--config", metavar="FILE", help="project config (default: nearest .gpuadmit.yaml)")
    parser.add_argument(
        "--files-root",
        action="append",
        default=[],
        metavar="DIR",
        help="read model repositories in this folder too, beside the working directory and the PATHs (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..config import find_config, load_config
    from ..writers import render as render_report
    from ..report import Report
    from . import suggest
    from .writers import input_kind, render_json, render_text, write

    import importlib.util

    missing = [name for name in ("ortools", "ruamel.yaml") if importlib.util.find_spec(name.split(".")[0]) is None]
    if missing:
        sys.stderr.write(f"gpuadmit: suggest needs {', '.join(missing)}: pip install 'gpuadmit[suggest]'\n")
        return EXIT_USAGE
    if not args.time_limit > 0:
        sys.stderr.write("gpuadmit: --time-limit must be a positive number of seconds\n")
        return EXIT_USAGE
    config = load_config(Path(args.config) if args.config else find_config())
    result = suggest(
        *args.paths,
        config=config,
        rule_dirs=args.rules,
        capacity=args.capacity,
        move=args.move,
        time_limit=args.time_limit,
        optimize=args.optimize,
        files_roots=args.files_root,
    )
    if result.unusable_input:
        sys.stderr.write(render_report(Report(input_findings=result.input_findings), "text"))
        return result.exit_code()
    if args.format == "json":
        sys.stdout.write(render_json(result.plans))
    else:
        sys.stdout.write(render_text(result.plans))
    if args.write:
        native = []
        for plan in result.plans:
            if plan.status != "changed":
                continue
            if input_kind(plan) != "native":
                sys.stderr.write(
                    f"gpuadmit: {plan.source.file}: --write edits native plans only; make the changes above where they live\n"
                )
                continue
            native.append(plan)
        for file in write(native):
            sys.stderr.write(f"gpuadmit: wrote {file}\n")
    return result.exit_code()

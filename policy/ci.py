"""`python -m policy.ci`: one lint run the way a CI job wants it (the GitHub Action's step).

One judgement, several outputs: annotations (or any format) on stdout, SARIF to a
file for code scanning, the Markdown summary *appended* to `$GITHUB_STEP_SUMMARY`
(other steps write there too, so it is never overwritten), and the counts and SARIF
path as step outputs in `$GITHUB_OUTPUT`. The exit code is `gpuadmit lint`'s: 0 clean,
1 findings at or above the failing severity, 2 unusable input.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Sequence

from .errors import InputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m policy.ci", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to lint")
    parser.add_argument(
        "--paths",
        dest="paths_text",
        default="",
        metavar="TEXT",
        help="more paths, separated by spaces or newlines (quotes allowed)",
    )
    parser.add_argument("--format", default="github", help="what goes to stdout (default: github annotations)")
    parser.add_argument("--sarif", metavar="FILE", help="write SARIF here")
    parser.add_argument(
        "--summary",
        metavar="FILE",
        default=os.environ.get("GITHUB_STEP_SUMMARY") or None,
        help="append the Markdown summary here (default: $GITHUB_STEP_SUMMARY)",
    )
    parser.add_argument(
        "--fail-on", choices=["error", "warning", "never", ""], default="", help="default: the project config's fail_on (error)"
    )
    parser.add_argument("--config", metavar="FILE", default="", help="project config (default: nearest .gpuadmit.yaml)")
    parser.add_argument("--rules", action="append", default=[], metavar="DIR", help="extra rule folder (repeatable)")
    parser.add_argument(
        "--files-root",
        action="append",
        default=[],
        metavar="DIR",
        help="read model repositories in these folders too, beside the working directory and the paths; "
        "separated by spaces or newlines (quotes allowed), repeatable",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except InputError as error:
        print(f"::error title=gpuadmit::{_escape(str(error))}")
        return 2


def _run(args: argparse.Namespace) -> int:
    from .api import Linter
    from .config import find_config, load_config
    from .writers import FORMATS, render

    if args.format not in FORMATS:
        raise InputError(f"unknown format {args.format!r}; choose one of {', '.join(FORMATS)}")
    paths = [*args.paths, *shlex.split(args.paths_text)] or ["."]
    config = load_config(Path(args.config) if args.config else find_config())
    if args.fail_on:
        config.fail_on = args.fail_on
    roots = [root for text in args.files_root for root in shlex.split(text)]
    report = Linter(config, args.rules).lint_paths(paths, files_roots=roots)

    sys.stdout.write(render(report, args.format))
    if args.sarif:
        sarif = Path(args.sarif)
        sarif.parent.mkdir(parents=True, exist_ok=True)
        sarif.write_text(render(report, "sarif"), encoding="utf-8")
    if args.summary:
        with open(args.summary, "a", encoding="utf-8") as summary:
            summary.write(render(report, "markdown") + "\n")
    code = report.exit_code(config.fail_on)
    outputs = os.environ.get("GITHUB_OUTPUT")
    if outputs:
        counts = report.counts()
        with open(outputs, "a", encoding="utf-8") as out:
            if args.sarif:
                out.write(f"sarif-file={Path(args.sarif).resolve()}\n")
            names = {"errors": "error", "warnings": "warning", "info": "info", "waived": "waived"}
            out.writelines(f"{name}={counts[key]}\n" for name, key in names.items())
            out.write(f"exit-code={code}\n")
    return code


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

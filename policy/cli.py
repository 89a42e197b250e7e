"""`gpuadmit`: lint, suggest, rules, schema, inspect, serve.

Exit codes: 0 clean, 1 findings at or above the failing severity, 2 unusable input or
wrong usage. Imports are deferred to the command that needs them: `gpuadmit lint` on
one file is the pre-commit path and must start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"gpuadmit: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI; `command` (the subcommand about to run) decides which heavy options load."""
    from . import __version__

    parser = _Parser(prog="gpuadmit", description="Reject unsafe GPU model-serving configurations before they deploy.")
    parser.add_argument("--version", action="version", version=f"gpuadmit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    lint = commands.add_parser("lint", help="judge plans, Triton repositories and Kubernetes manifests")
    lint.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (formats are detected); - reads standard input")
    lint.add_argument("--format", "-f", default="text", help="text | json | sarif | github | junit | markdown")
    lint.add_argument(
        "--output",
        "-o",
        action="append",
        default=[],
        metavar="[FORMAT=]FILE",
        help="also write a format to a file, e.g. -o sarif=gpuadmit.sarif (repeatable)",
    )
    lint.add_argument("--capacity", default="declared", metavar="declared|nvml|FILE", help="where real GPU capacity comes from")
    lint.add_argument("--strict-capacity", action="store_true", default=None, help="unverifiable capacity is an error")
    lint.add_argument("--rules", action="append", default=[], metavar="DIR", help="extra rule folder (repeatable)")
    lint.add_argument("--config", metavar="FILE", help="project config (default: nearest .gpuadmit.yaml)")
    lint.add_argument("--fail-on", choices=["error", "warning", "never"], default=None, help="severity that fails the run")
    lint.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    lint.add_argument(
        "--cluster",
        metavar="kube|FILE",
        help="what the cluster runs: kube (its API) or a snapshot (kubectl get nodes,deployments,... -o yaml)",
    )
    lint.add_argument("--kubeconfig", metavar="FILE", help="with --cluster kube (default: service account, $KUBECONFIG)")
    lint.add_argument(
        "--files-root",
        action="append",
        default=[],
        metavar="DIR",
        help="a model repository named by a plan or manifest is read only inside the folders being linted "
        "(the working directory and the PATHs); this adds one (repeatable)",
    )
    lint.add_argument(
        "--changed",
        action="store_true",
        help="the PATHs are changed files (pre-commit): judge the units they belong to, read from the working directory",
    )
    lint.set_defaults(run=_lint)

    suggest = commands.add_parser("suggest", help="suggest the safe plan that uses the GPUs best, as a diff")
    if command == "suggest":
        from .suggest.command import add_arguments as add_suggest_arguments

        add_suggest_arguments(suggest)
    suggest.set_defaults(run=_suggest)

    audit = commands.add_parser("audit", help="judge every sharing domain of a cluster as it runs now")
    audit.add_argument(
        "--cluster",
        required=True,
        metavar="kube|FILE",
        help="kube (its API) or a snapshot (kubectl get nodes,deployments,... -A -o yaml)",
    )
    audit.add_argument("--kubeconfig", metavar="FILE", help="with --cluster kube (default: service account, $KUBECONFIG)")
    audit.add_argument("--format", "-f", default="text", help="text | json | sarif | github | junit | markdown")
    audit.add_argument(
        "--policy-report", metavar="FILE", help="also write wgpolicyk8s.io/v1alpha2 PolicyReports (a List; - for stdout)"
    )
    audit.add_argument("--rules", action="append", default=[], metavar="DIR", help="extra rule folder (repeatable)")
    audit.add_argument("--config", metavar="FILE", help="project config (default: nearest .gpuadmit.yaml)")
    audit.add_argument("--fail-on", choices=["error", "warning", "never"], default=None, help="severity that fails the run")
    audit.set_defaults(run=_audit)

    rules = commands.add_parser("rules", help="list rules or explain one")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True, parser_class=_Parser)
    for name, run in (("list", _rules_list), ("explain", _rules_explain)):
        sub = rules_commands.add_parser(name)
        if name == "explain":
            sub.add_argument("rule_id", metavar="ID")
        sub.add_argument("--rules", action="append", default=[], metavar="DIR")
        sub.add_argument("--config", metavar="FILE")
        sub.set_defaults(run=run)

    # `inspect` and `serve` define their options in modules that import NVML and
    # Starlette; they are imported only when that command runs, so `lint` stays fast.
    inspect = commands.add_parser("inspect", help="print this machine's GPUs (NVML) as a plan fragment")
    if command == "inspect":
        from .capacity.inspect import add_arguments as add_inspect_arguments

        add_inspect_arguments(inspect)
    inspect.set_defaults(run=_inspect)

    serve = commands.add_parser("serve", help="run the Kubernetes validating admission webhook")
    if command == "serve":
        from webhook.server import add_arguments as add_serve_arguments

        add_serve_arguments(serve)
    serve.set_defaults(run=_serve)

    catalog = commands.add_parser("catalog", help="list the GPU catalog: memory and MIG profiles per product")
    catalog.set_defaults(run=_catalog)

    schema = commands.add_parser("schema", help="print the JSON Schema of plans, rule files or the config")
    schema.add_argument("--kind", choices=["plan", "rule", "config"], default="plan")
    schema.set_defaults(run=_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .errors import InputError

    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except InputError as error:
        sys.stderr.write("".join(f"gpuadmit: {each}\n" for each in error.each()))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


def _config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .config import find_config, load_config

    return load_config(Path(args.config) if args.config else find_config())


def _lint(args: argparse.Namespace) -> int:
    from .api import Linter
    from .writers import FORMATS, render

    config = _config(args)
    if args.fail_on:
        config.fail_on = args.fail_on
    if args.format not in FORMATS:
        return _usage(f"unknown format {args.format!r}; choose one of {', '.join(FORMATS)}")
    outputs = [_parse_output(spec, args.format) for spec in args.output]
    for fmt, _ in outputs:
        if fmt not in FORMATS:
            return _usage(f"unknown format {fmt!r} in --output")
    if args.strict_capacity is not None:
        config.strict_capacity = args.strict_capacity
    linter = Linter(config, args.rules, capacity=args.capacity)
    if args.changed:
        from .units import lint_changed

        report = lint_changed(linter, args.paths, files_roots=args.files_root)
    elif args.cluster:
        from .cluster.kube import open_cluster

        neighbours = [open_cluster(args.cluster, args.kubeconfig).batch()]
        report = linter.lint_paths(args.paths, neighbours=neighbours, files_roots=args.files_root)
    else:
        report = linter.lint_paths(args.paths, files_roots=args.files_root)
    color = args.color == "always" or (
        args.color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ and args.format == "text"
    )
    sys.stdout.write(render(report, args.format, color=color))
    for fmt, file in outputs:
        _write(file, render(report, fmt), "-o")
    return report.exit_code(config.fail_on)


def _audit(args: argparse.Namespace) -> int:
    from .api import Linter
    from .audit import audit
    from .cluster.kube import open_cluster
    from .writers import FORMATS, render

    config = _config(args)
    if args.fail_on:
        config.fail_on = args.fail_on
    if args.format not in FORMATS:
        return _usage(f"unknown format {args.format!r}; choose one of {', '.join(FORMATS)}")
    view = open_cluster(args.cluster, args.kubeconfig)
    report, sources = audit(Linter(config, args.rules), view)
    if args.policy_report:
        import json

        from .cluster.policyreport import policy_reports

        text = json.dumps(policy_reports(report, sources, view), indent=2) + "\n"
        if args.policy_report == "-":
            sys.stdout.write(text)
            return report.exit_code(config.fail_on)
        _write(args.policy_report, text, "--policy-report")
    sys.stdout.write(render(report, args.format))
    return report.exit_code(config.fail_on)


def _write(file: str, text: str, option: str) -> None:
    """A report written where `option` asked; a path that cannot be written is bad input."""
    from .errors import InputError

    try:
        Path(file).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{option}: cannot write the report: {exc.strerror or exc}", file=file) from None


def _parse_output(spec: str, default_format: str) -> tuple[str, str]:
    fmt, sep, file = spec.partition("=")
    if not sep:
        suffix = Path(spec).suffix.lstrip(".").lower()
        guessed = {"sarif": "sarif", "json": "json", "xml": "junit", "md": "markdown", "txt": "text"}.get(suffix)
        return guessed or default_format, spec
    return fmt, file


def _usage(message: str) -> int:
    sys.stderr.write(f"gpuadmit: {message}\n")
    return EXIT_USAGE


def _ruleset(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .engine import RuleSet

    from .configured import refuse_locked

    config = _config(args)
    rules = RuleSet.load([*config.rule_paths(), *map(Path, args.rules)], config.rules)
    refuse_locked(config.rules, {r.id: r.spec for r in rules.rules})
    return rules


def _rules_list(args: argparse.Namespace) -> int:
    rules = _ruleset(args)
    for rule in sorted(rules.rules, key=lambda r: r.id):
        state = "" if rule.spec.enabled else "  (disabled)"
        print(f"{rule.id:<28} {rule.spec.severity:<8} {rule.spec.scope:<7} {rule.spec.title}{state}")
    return EXIT_OK


def _rules_explain(args: argparse.Namespace) -> int:
    rules = _ruleset(args)
    rule = rules.by_id.get(args.rule_id)
    if rule is None:
        from .closest import did_you_mean

        return _usage(f"no rule {args.rule_id!r}" + did_you_mean(args.rule_id, rules.by_id))
    spec = rule.spec
    print(f"{spec.id}: {spec.title}")
    print(f"severity: {spec.severity}   scope: {spec.scope}   file: {rule.file}")
    print()
    print(spec.description.strip())
    if spec.params:
        print("\nparameters (override under `rules: {" + spec.id + ": {params: ...}}` in .gpuadmit.yaml):")
        for name, value in spec.params.items():
            print(f"  {name}: {value}")
    print(f"\nfix: {spec.remediation}")
    return EXIT_OK


def _suggest(args: argparse.Namespace) -> int:
    from .suggest.command import run

    return run(args)


def _inspect(args: argparse.Namespace) -> int:
    from .capacity.inspect import run

    return run(args)


def _serve(args: argparse.Namespace) -> int:
    from webhook.server import run

    return run(args)


def _catalog(args: argparse.Namespace) -> int:
    from .catalog import ambiguous_names, products

    for product in products():
        profiles = (
            ", ".join(f"{name}×{count} ({product.mig_slice_gb(name):g} GiB)" for name, count in product.mig.items()) or "no MIG"
        )
        print(f"{product.name:<12} {product.memory_mib:>7} MiB = {product.memory_gb:6.1f} GiB   {profiles}")
    print("\nNames that fit several products (name the variant):")
    for name, candidates in ambiguous_names().items():
        print(f"  {name:<12} {' | '.join(p.name for p in candidates)}")
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    import json

    if args.kind == "plan":
        from .plan import json_schema

        schema = json_schema()
    elif args.kind == "rule":
        from .rules import rule_file_schema

        schema = rule_file_schema()
    else:
        from .config import ProjectConfig

        schema = ProjectConfig.model_json_schema()
    print(json.dumps(schema, indent=2))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

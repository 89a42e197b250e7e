"""docs/rules.md, generated from the rule files so the documentation cannot drift.

python -m policy.ruledocs > docs/rules.md
"""

from __future__ import annotations

from .rules import RuleSpec, builtin_rules_dir, describe_scope, load_rule_dir


def render(specs: list[RuleSpec]) -> str:
    lines = [
        "# Built-in rules",
        "",
        "Generated from `rules/*.yaml` by `python -m policy.ruledocs`; do not edit by hand.",
        "Override a rule's severity or parameters, or disable it, in `.gpuadmit.yaml`.",
        "",
        "| id | severity | judges | title |",
        "|---|---|---|---|",
    ]
    lines += [f"| [`{s.id}`](#{s.id}) | {s.severity} | {describe_scope(s.scope)} | {s.title} |" for s in specs]
    for spec in specs:
        lines += ["", f"## {spec.id}", "", f"**{spec.title}** — {spec.severity}, judges {describe_scope(spec.scope)}.", ""]
        lines += [spec.description.strip(), ""]
        if spec.params:
            lines += ["Parameters:", ""]
            lines += [f"- `{name}`: {value}" for name, value in spec.params.items()]
            lines.append("")
        if spec.validations:
            lines += ["Checks (CEL, true means pass):", ""]
            lines += [f"- `{v.expression}`" for v in spec.validations]
            lines.append("")
        lines.append(f"Fix: {spec.remediation}")
        for dialect, text in spec.remediations.items():  # the fix in a Triton or Kubernetes input's words
            lines += ["", f"Fix ({'Triton' if dialect == 'triton' else 'Kubernetes'}): {text}"]
        if spec.locked:
            lines += ["", "Not configurable:", ""]
            lines += [f"- `{key}`: {why}" for key, why in spec.locked.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    specs = sorted((spec for spec, _ in load_rule_dir(builtin_rules_dir())), key=lambda s: s.id)
    print(render(specs), end="")


if __name__ == "__main__":
    main()

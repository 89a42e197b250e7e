"""SARIF 2.1.0 for code scanning (GitHub, GitLab, Azure DevOps, IDE viewers).

One run: the rules as `tool.driver.rules` with their help text, one result per
finding with its file, line and column, and waived findings as suppressed results
(`suppressions`), so a waiver shows up in the code-scanning UI instead of vanishing.

`partialFingerprints` hash the rule, the file, the plan and the subject, never the line
or the message: an alert keeps its identity when lines move or numbers change, and
closes when the finding goes away.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..findings import Finding
from ..report import Report, RuleInfo

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/gpuadmit/gpuadmit"
#: Rule documentation, generated from the rule files; `#<rule-id>` is each rule's anchor.
RULES_DOC_URI = INFORMATION_URI + "/blob/main/docs/rules.md"
#: The partialFingerprints key; bump the version if the hashed parts ever change.
FINGERPRINT_KEY = "gpuadmitSubject/v1"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def write(report: Report, *, color: bool = False) -> str:
    return json.dumps(to_sarif(report), indent=2, ensure_ascii=False) + "\n"


def to_sarif(report: Report) -> dict[str, Any]:
    """The SARIF log as a dict (tests and callers that post-process it use this)."""
    rules = _rules(report)
    index = {rule["id"]: n for n, rule in enumerate(rules)}
    seen: dict[str, int] = {}
    results = [_result(finding, index, seen) for finding in report.findings]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "gpuadmit",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _rules(report: Report) -> list[dict[str, Any]]:
    """The run's rules, plus a bare entry for any rule a finding names that the report does not describe."""
    infos = list(report.rules)
    known = {info.id for info in infos}
    for finding in report.findings:
        if finding.rule not in known:
            known.add(finding.rule)
            infos.append(RuleInfo(finding.rule, finding.rule, finding.rule, finding.fix or "", finding.severity, "input"))
    return [_rule(info) for info in infos]


def _rule(info: RuleInfo) -> dict[str, Any]:
    description = " ".join(info.description.split())
    fix = _unescape_template(info.remediation)
    return {
        "id": info.id,
        "name": "".join(part.capitalize() for part in info.id.split("-")),
        "shortDescription": {"text": info.title},
        "fullDescription": {"text": description},
        "help": {
            "text": f"{description}\n\nFix: {fix}",
            "markdown": f"**{info.title}**\n\n{description}\n\n**Fix:** {fix}\n\n[Rule documentation]({RULES_DOC_URI}#{info.id})",
        },
        "helpUri": f"{RULES_DOC_URI}#{info.id}",
        "defaultConfiguration": {"level": LEVELS[info.severity]},
        "properties": {"tags": ["gpuadmit", info.scope], "precision": "very-high"},
    }


_FORMAT_SPEC = re.compile(r"(?<!\{)\{([A-Za-z_][\w.]*)(?:![rsa])?:[^{}]*\}")


def _unescape_template(text: str) -> str:
    """Remediations are message templates: `{model.name}` stays as a readable placeholder
    (its format spec dropped), `{{`/`}}` become the literal braces they stand for."""
    return _FORMAT_SPEC.sub(r"{\1}", text).replace("{{", "{").replace("}}", "}")


def _result(finding: Finding, index: dict[str, int], seen: dict[str, int]) -> dict[str, Any]:
    text = finding.message + (f"\nFix: {finding.fix}" if finding.fix else "")
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": index[finding.rule],
        "level": LEVELS[finding.severity],
        "message": {"text": text},
    }
    uri = artifact_uri(finding.file) if finding.file else None
    if uri is not None:
        physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
        if not uri.startswith("file:"):
            physical["artifactLocation"]["uriBaseId"] = "%SRCROOT%"
        if finding.line:
            region: dict[str, int] = {"startLine": finding.line}
            if finding.column:
                region["startColumn"] = finding.column
            physical["region"] = region
        location: dict[str, Any] = {"physicalLocation": physical}
        logical = _logical_location(finding)
        if logical:
            location["logicalLocations"] = [logical]
        result["locations"] = [location]
    result["partialFingerprints"] = {FINGERPRINT_KEY: _fingerprint(finding, uri, seen)}
    properties: dict[str, Any] = {"subject": finding.subject}
    if finding.plan:
        properties["plan"] = finding.plan
    if finding.fix:
        properties["fix"] = finding.fix
    result["properties"] = properties
    if finding.waived:
        result["suppressions"] = [
            {
                "kind": "external" if finding.waiver_source == "config" else "inSource",
                "status": "accepted",
                "justification": finding.waiver_reason or "waived",
            }
        ]
    return result


def _logical_location(finding: Finding) -> dict[str, str] | None:
    if finding.model:
        kind, name = "model", finding.model
    elif finding.gpu:
        kind, name = "gpu", finding.gpu
    else:
        return None
    qualified = f"{finding.plan}/{name}" if finding.plan else name
    return {"name": name, "fullyQualifiedName": qualified, "kind": kind}


def _fingerprint(finding: Finding, uri: str | None, seen: dict[str, int]) -> str:
    """Stable across edits: rule, file, plan and subject; a counter separates repeats of that tuple."""
    subject = finding.model or finding.gpu or ("" if finding.plan else finding.message)
    base = "\0".join([finding.rule, uri or "", finding.plan or "", subject])
    occurrence = seen.get(base, 0)
    seen[base] = occurrence + 1
    if occurrence:
        base += f"\0{occurrence}"
    return hashlib.sha256(base.encode("utf-8")).hexdigest()[:32]


def artifact_uri(file: str) -> str:
    """A relative URI with forward slashes for files under the working directory, else a file: URI."""
    path = Path(file)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return path.as_uri()
    text = path.as_posix()
    while text.startswith("./"):
        text = text[2:]
    return quote(text, safe="/-._~")

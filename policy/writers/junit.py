"""JUnit XML for CI test reports (GitLab, Jenkins, Azure DevOps, test-report actions).

One `<testsuite>` per plan (plus one named `input` for files that could not be read).
In it, one test case per rule and subject that has findings, and one passing test case
per rule that found nothing in that plan, so the totals read as "rules checked":

- an error or warning is a `<failure>` (its `type` is the severity); several findings
  of one rule about one subject are one test case with one failure listing them all;
- an info finding passes, its message in `<system-out>`;
- a waived finding is `<skipped>`, with the waiver's reason.

Whether the job fails is still decided by `--fail-on`; the report shows every problem.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Iterable

from ..findings import Finding
from ..report import Report

#: Characters XML 1.0 cannot hold, even escaped; a plan could smuggle them into a model name.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def write(report: Report, *, color: bool = False) -> str:
    root = ET.Element("testsuites", name="gpuadmit")
    suites: list[ET.Element] = []
    if report.input_findings:
        suites.append(_suite("input", None, report.input_findings, []))
    rule_ids = [rule.id for rule in report.rules if rule.scope != "input"]
    for plan in report.plans:
        suites.append(_suite(plan.name, plan.file, plan.findings, rule_ids))
    for attribute in ("tests", "failures", "skipped"):
        root.set(attribute, str(sum(int(suite.get(attribute, "0")) for suite in suites)))
    root.set("errors", "0")
    root.extend(suites)
    for element in root.iter():
        for key, value in element.attrib.items():
            element.set(key, _NOT_XML.sub("\ufffd", value))
        if element.text:
            element.text = _NOT_XML.sub("\ufffd", element.text)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _suite(name: str, file: str | None, findings: Iterable[Finding], rule_ids: list[str]) -> ET.Element:
    suite = ET.Element("testsuite", name=name)
    if file:
        suite.set("file", file)
    groups: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in findings:
        groups[(finding.rule, finding.subject)].append(finding)
    tests = failures = skipped = 0
    for (rule, subject), group in groups.items():
        tests += 1
        case = _case(name, rule, subject, group[0])
        failing = [f for f in group if not f.waived and f.severity in ("error", "warning")]
        waived = [f for f in group if f.waived]
        if failing:
            failures += 1
            worst = "error" if any(f.severity == "error" for f in failing) else "warning"
            failure = ET.SubElement(case, "failure", message=failing[0].message, type=worst)
            failure.text = "\n".join(_describe(f) for f in failing)
        elif waived:
            skipped += 1
            ET.SubElement(case, "skipped", message=f"waived: {waived[0].waiver_reason}")
        info = [f for f in group if f.severity == "info" and not f.waived]
        if info:
            ET.SubElement(case, "system-out").text = "\n".join(_describe(f) for f in info)
        suite.append(case)
    found = {rule for rule, _ in groups}
    for rule in rule_ids:
        if rule not in found:
            tests += 1
            suite.append(_case(name, rule, "all", None))
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    return suite


def _case(suite: str, rule: str, subject: str, finding: Finding | None) -> ET.Element:
    case = ET.Element("testcase", name=f"{rule}: {subject}", classname=f"gpuadmit.{suite}")
    if finding is not None and finding.file:
        case.set("file", finding.file)
        if finding.line:
            case.set("line", str(finding.line))
    return case


def _describe(finding: Finding) -> str:
    where = ""
    if finding.file:
        where = (
            finding.file
            + (f":{finding.line}" if finding.line else "")
            + (f":{finding.column}" if finding.line and finding.column else "")
            + ": "
        )
    text = f"{finding.severity}: {where}{finding.message}"
    if finding.fix:
        text += f"\nfix: {finding.fix}"
    return text

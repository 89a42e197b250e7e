"""Verdicts as `wgpolicyk8s.io/v1alpha2` PolicyReports, the format Kyverno and Policy
Reporter read (CRD: kubernetes-sigs/wg-policy-prototypes, policy-report/crd/v1alpha2).

One PolicyReport per namespace, named `gpuadmit`. Each finding is one result about the
workloads it concerns: a model finding about its workload, a GPU finding about every
workload on that GPU, a plan finding about every workload of the domain. A workload
without findings gets one `pass` result. `kubectl apply -f` of the written List creates
the reports or updates them.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from ..findings import Finding
from ..report import Report
from ..source import PlanSource
from ..yamlio import Document
from .snapshot import ClusterView

API_VERSION = "wgpolicyk8s.io/v1alpha2"
POLICY = "gpuadmit"
RESULT = {"error": "fail", "warning": "warn", "info": "pass"}
SEVERITY = {"error": "high", "warning": "medium", "info": "info"}


def policy_reports(report: Report, sources: Sequence[PlanSource], view: ClusterView, now: float | None = None) -> dict[str, Any]:
    """A `List` of PolicyReports, one per namespace that runs a judged workload."""
    stamp = {"seconds": int(now if now is not None else time.time()), "nanos": 0}
    located = {(doc.file, doc.line): doc for doc in view.objects}
    results: dict[str, list[dict[str, Any]]] = {}
    judged: dict[tuple[str, str, str], Document] = {}
    failing: set[tuple[str, str, str]] = set()
    for source, plan_report in zip(sources, report.plans):
        docs = _workload_docs(source, located)
        for doc in docs.values():
            judged[_key(doc)] = doc
        for finding in plan_report.findings:
            concerned = _concerned(finding, source, docs)
            for namespace, refs in _by_namespace(concerned).items():
                results.setdefault(namespace, []).append(_result(finding, source, refs, stamp))
            if finding.counts and finding.severity != "info":
                failing.update(_key(doc) for doc in concerned)
    for key, doc in judged.items():
        if key not in failing:
            results.setdefault(key[1], []).append(
                {
                    "policy": POLICY,
                    "rule": "sharing-domain",
                    "result": "pass",
                    "scored": True,
                    "message": "no findings in its sharing domain",
                    "source": POLICY,
                    "timestamp": stamp,
                    "category": "GPU sharing",
                    "resources": [_reference(doc)],
                }
            )
    items = [_report(namespace, entries) for namespace, entries in sorted(results.items())]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def _report(namespace: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    summary = {"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0}
    for entry in results:
        summary[entry["result"]] += 1
    return {
        "apiVersion": API_VERSION,
        "kind": "PolicyReport",
        "metadata": {"name": POLICY, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": POLICY}},
        "summary": summary,
        "results": results,
    }


def _result(finding: Finding, source: PlanSource, refs: list[dict[str, Any]], stamp: dict[str, int]) -> dict[str, Any]:
    properties = {"domain": source.plan.metadata.name}
    if finding.gpu:
        properties["gpu"] = finding.gpu
    if finding.model:
        properties["model"] = finding.model
    if finding.fix:
        properties["fix"] = finding.fix
    if finding.waived and finding.waiver_reason:
        properties["waiver"] = finding.waiver_reason
    return {
        "policy": POLICY,
        "rule": finding.rule,
        "result": "skip" if finding.waived else RESULT[finding.severity],
        "severity": SEVERITY[finding.severity],
        "scored": True,
        "message": finding.message,
        "category": "GPU sharing",
        "source": POLICY,
        "timestamp": stamp,
        "properties": properties,
        "resources": refs,
    }


def _workload_docs(source: PlanSource, located: dict[tuple[str, int], Document]) -> dict[str, Document]:
    """Model name -> the cluster object it was read from (models sit at their object's line)."""
    found: dict[str, Document] = {}
    for model in source.plan.models:
        pos = source.positions.get(("model", model.name))
        if pos is None:
            continue
        file = pos[2] if len(pos) > 2 else source.file
        doc = located.get((str(file), pos[0]))
        if doc is not None:
            found[model.name] = doc
    return found


def _concerned(finding: Finding, source: PlanSource, docs: dict[str, Document]) -> list[Document]:
    if finding.model and finding.model in docs:
        return [docs[finding.model]]
    if finding.gpu:
        on_gpu = [
            m.name for m in source.plan.models if any(t == finding.gpu or t.startswith(f"{finding.gpu}:") for t in m.placed_on)
        ]
        chosen = [docs[name] for name in on_gpu if name in docs]
        if chosen:
            return _unique(chosen)
    return _unique(list(docs.values()))


def _unique(docs: list[Document]) -> list[Document]:
    seen: dict[int, Document] = {}
    for doc in docs:
        seen.setdefault(id(doc), doc)
    return list(seen.values())


def _by_namespace(docs: list[Document]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        grouped.setdefault(_key(doc)[1], []).append(_reference(doc))
    return grouped


def _key(doc: Document) -> tuple[str, str, str]:
    data = doc.data if isinstance(doc.data, dict) else {}
    raw = data.get("metadata")
    meta: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return (str(data.get("kind", "")), str(meta.get("namespace") or "default"), str(meta.get("name", "")))


def _reference(doc: Document) -> dict[str, Any]:
    data = doc.data if isinstance(doc.data, dict) else {}
    kind, namespace, name = _key(doc)
    ref = {"apiVersion": str(data.get("apiVersion", "")), "kind": kind, "namespace": namespace, "name": name}
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    if isinstance(meta, dict) and isinstance(meta.get("uid"), str):
        ref["uid"] = meta["uid"]
    return ref

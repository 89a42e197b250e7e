"""A review beside kept neighbours (the cluster view reads each domain once) judges the same
plan as grouping the whole snapshot with the object, which `lint --cluster` does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from policy.api import Linter
from policy.cluster import load_snapshot
from policy.domains import Batch, group
from policy.readers import read_documents
from policy.yamlio import Document

DATA = Path(__file__).parent / "data"


def _committed(linter: Linter, sources: list) -> dict[str, float]:  # type: ignore[type-arg]
    report = linter.lint_sources(sources)
    return {g.id: round(g.committed_gb, 3) for p in report.plans for g in p.gpus}


@pytest.mark.parametrize("name", ["new-embeddings.yaml", "new-embeddings-small.yaml", "chat-update"])
def test_kept_neighbours_give_the_plan_that_full_grouping_gives(name: str) -> None:
    view = load_snapshot(DATA / "snapshot.yaml")
    if name == "chat-update":
        snapshot = yaml.safe_load((DATA / "snapshot.yaml").read_text(encoding="utf-8"))
        data = next(i for i in snapshot["items"] if i["kind"] == "Deployment" and i["metadata"]["name"] == "chat-llm")
        data["spec"]["replicas"] = 2
    else:
        data = yaml.safe_load((DATA / name).read_text(encoding="utf-8"))
    doc = Document(data, "review", 0, 1)
    fast = view.beside(doc, "review")
    assert fast is not None
    objects: list[Document] = []
    read_documents([doc], "review", objects=objects)
    _, grouped = group([view.batch(), Batch("review", objects, "review", order=1)])
    linter = Linter()
    assert sorted(m.name for m in fast.plan.models) == sorted(m.name for s in grouped.sources for m in s.plan.models)
    assert _committed(linter, [fast]) == _committed(linter, grouped.sources)
    verdicts = [sorted((f.rule, f.severity) for f in linter.lint_sources(s).findings) for s in ([fast], grouped.sources)]
    assert verdicts[0] == verdicts[1]

"""The webhook's metrics stay bounded whatever clients send."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from webhook.metrics import MAX_KINDS, Metrics


def test_made_up_kinds_and_operations_do_not_grow_the_series() -> None:
    metrics = Metrics()
    for n in range(1000):
        metrics.review(f"Kind{n}", f"OP{n}", "allowed", 0.001)
    metrics.review("x" * 100_000, "CREATE", "denied", 0.001)
    text = metrics.render()
    series = [line for line in text.splitlines() if line.startswith("gpuadmit_reviews_total{")]
    assert len(series) <= MAX_KINDS + 2
    assert 'kind="other"' in text and 'operation="other"' in text
    assert "x" * 100 not in text


def test_real_kinds_keep_their_label() -> None:
    metrics = Metrics()
    metrics.review("ServingPlan", "CREATE", "denied", 0.002)
    samples = [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(metrics.render())
        for sample in family.samples
        if sample.name == "gpuadmit_reviews_total"
    ]
    assert samples == [({"kind": "ServingPlan", "operation": "CREATE", "decision": "denied"}, 1.0)]


def test_rule_fallbacks_to_cel_cpp_are_published_by_rule(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from collections import Counter

    from policy import ruleeval

    monkeypatch.setattr(ruleeval, "FALLBACKS", Counter({"memory-fit": 3}))
    samples = {
        sample.labels["rule"]: sample.value
        for family in text_string_to_metric_families(Metrics().render())
        for sample in family.samples
        if sample.name == "gpuadmit_rule_fallbacks_total"
    }
    assert samples == {"memory-fit": 3.0}

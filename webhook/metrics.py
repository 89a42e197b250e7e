"""Prometheus metrics of the webhook, kept by `prometheus_client` in a registry of its own.

Counters of reviews by kind, operation and decision; a latency histogram from 1 ms to
beyond 10 s; bad requests by HTTP status; rule and certificate reloads; Lease writes of
coordinated admissions by result; in-flight
reviews and the active rule set as gauges read when scraped.

Each `Metrics` owns its `CollectorRegistry` (never the process-wide default one), so
tests and the benchmark can build as many apps as they like, as with everything else
in the app.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: The text exposition format gpuadmit's metric names fit (all are legacy Prometheus
#: names), understood by every Prometheus version; prometheus_client writes it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Seconds. A review takes about a millisecond; the API server gives up at timeoutSeconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Label values come from requests; these bounds keep a stream of made-up kinds from
#: growing the series (and the server's memory) without end.
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
MAX_KINDS = 64
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")

# A `<name>_created` series beside every counter would double the series for a value
# nobody alerts on; the process-start time is in the standard process metrics.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """The webhook's metrics. One instance per server, updated from the loop and workers."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._reviews = Counter(
            "gpuadmit_reviews",
            "AdmissionReviews answered, by object kind, operation and decision.",
            ("kind", "operation", "decision"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "gpuadmit_review_duration_seconds",
            "Time from request to answer of a review.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._bad_requests = Counter(
            "gpuadmit_bad_requests",
            "Requests that were not an answerable review, by HTTP status.",
            ("status",),
            registry=self.registry,
        )
        self._reloads = Counter(
            "gpuadmit_reloads",
            "Reloads of rules and TLS certificates, by result.",
            ("what", "result"),
            registry=self.registry,
        )
        self._coordination = Counter(
            "gpuadmit_coordination",
            "Lease writes of admissions coordinated across replicas (--cluster kube), by result: "
            "written, conflict (another replica wrote first: judged again), failed (the failure policy answered).",
            ("result",),
            registry=self.registry,
        )
        self._kinds_lock = threading.Lock()
        #: Kinds with a series of their own ("other" included), at most MAX_KINDS.
        self._kinds: set[str] = set()
        #: Reviews being read or judged now (changed on the event loop only).
        self.in_flight = 0
        self.rules_loaded_at = 0.0
        self.rules_count = 0
        self.started_at = time.time()
        #: With `--cluster kube`: how far behind the cluster view is known to be (seconds;
        #: 0 while its watch follows every kind).
        self.cluster_view_behind: Callable[[], float] | None = None
        self.registry.register(_StateCollector(self))

    def review(self, kind: str, operation: str, decision: str, seconds: float) -> None:
        """One answered review: its labels and how long it took."""
        operation = operation if operation in OPERATIONS else "other"
        if kind not in self._kinds:
            with self._kinds_lock:
                if kind not in self._kinds:
                    if not _KIND.fullmatch(kind or "") or len(self._kinds) >= MAX_KINDS:
                        kind = "other"
                    self._kinds.add(kind)
        self._reviews.labels(kind, operation, decision).inc()
        self._latency.observe(seconds)

    def bad_request(self, status: int) -> None:
        self._bad_requests.labels(str(status)).inc()

    def reload(self, what: str, result: str) -> None:
        """`what`: rules | tls; `result`: ok | failed."""
        self._reloads.labels(what, result).inc()

    def coordination(self, result: str) -> None:
        """`result`: written | conflict | failed."""
        self._coordination.labels(result).inc()

    def render(self) -> str:
        """The exposition text."""
        return generate_latest(self.registry).decode("utf-8")


class _StateCollector(Collector):
    """Gauges of what the server holds now, read from `Metrics` when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        yield GaugeMetricFamily("gpuadmit_reviews_in_flight", "Reviews being read or judged now.", value=metrics.in_flight)
        yield GaugeMetricFamily("gpuadmit_rules", "Rules in the active rule set.", value=metrics.rules_count)
        yield GaugeMetricFamily(
            "gpuadmit_rules_loaded_timestamp_seconds",
            "When the active rule set was compiled.",
            value=metrics.rules_loaded_at,
        )
        if metrics.cluster_view_behind is not None:
            yield GaugeMetricFamily(
                "gpuadmit_cluster_view_behind_seconds",
                "How long the cluster view's watch has been broken (0: following every kind).",
                value=metrics.cluster_view_behind(),
            )
        from policy.ruleeval import FALLBACKS  # the engine's count, kept per process

        fallbacks = CounterMetricFamily(
            "gpuadmit_rule_fallbacks",
            "Plans a translated rule handed to cel-cpp (its translation could not vouch for the answer), by rule.",
            labels=("rule",),
        )
        for rule, count in sorted(FALLBACKS.items()):  # rule ids of loaded rules: a bounded set
            fallbacks.add_metric((rule,), count)
        yield fallbacks

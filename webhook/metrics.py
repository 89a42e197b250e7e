"""Prometheus metrics in the text exposition format (0.0.4), kept small and dependency-free.

Counters of reviews by kind, operation and decision; a latency histogram from 1 ms to
beyond 10 s; in-flight reviews; rule and certificate reloads.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from typing import Iterable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Seconds. A review takes about a millisecond; the API server gives up at timeoutSeconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    pairs = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values))
    return "{" + pairs + "}" if pairs else ""


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else f"{value:.1f}"


#: Label values come from requests; these bounds keep a stream of made-up kinds from
#: growing the series (and the server's memory) without end.
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
MAX_KINDS = 64
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")


class Metrics:
    """The webhook's counters. One instance per server, updated from the loop and workers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reviews: dict[tuple[str, str, str], int] = {}
        #: Kinds with a series of their own ("other" included), at most MAX_KINDS.
        self._kinds: set[str] = set()
        self._bad_requests: dict[str, int] = {}
        self._bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._latency_count = 0
        self._reloads: dict[tuple[str, str], int] = {}
        self.in_flight = 0
        self.rules_loaded_at = 0.0
        self.rules_count = 0
        self.started_at = time.time()

    def review(self, kind: str, operation: str, decision: str, seconds: float) -> None:
        """One answered review: its labels and how long it took."""
        operation = operation if operation in OPERATIONS else "other"
        index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        with self._lock:
            if kind not in self._kinds:
                if not _KIND.fullmatch(kind or "") or len(self._kinds) >= MAX_KINDS:
                    kind = "other"
                self._kinds.add(kind)
            key = (kind, operation, decision)
            self._reviews[key] = self._reviews.get(key, 0) + 1
            self._bucket_counts[index] += 1
            self._latency_sum += seconds
            self._latency_count += 1

    def bad_request(self, status: int) -> None:
        with self._lock:
            self._bad_requests[str(status)] = self._bad_requests.get(str(status), 0) + 1

    def reload(self, what: str, result: str) -> None:
        """`what`: rules | tls; `result`: ok | failed."""
        with self._lock:
            self._reloads[(what, result)] = self._reloads.get((what, result), 0) + 1

    def render(self) -> str:
        """The exposition text."""
        with self._lock:
            reviews = dict(self._reviews)
            bad = dict(self._bad_requests)
            buckets = list(self._bucket_counts)
            total, count = self._latency_sum, self._latency_count
            reloads = dict(self._reloads)
        out: list[str] = [
            "# HELP gpuadmit_reviews_total AdmissionReviews answered, by object kind, operation and decision.",
            "# TYPE gpuadmit_reviews_total counter",
        ]
        for (kind, op, decision), n in sorted(reviews.items()):
            out.append(f"gpuadmit_reviews_total{_labels(('kind', 'operation', 'decision'), (kind, op, decision))} {n}")
        out += [
            "# HELP gpuadmit_review_duration_seconds Time from request to answer of a review.",
            "# TYPE gpuadmit_review_duration_seconds histogram",
        ]
        running = 0
        for bound, n in zip((*LATENCY_BUCKETS, float("inf")), buckets):
            running += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(f'gpuadmit_review_duration_seconds_bucket{{le="{le}"}} {running}')
        out.append(f"gpuadmit_review_duration_seconds_sum {total!r}")
        out.append(f"gpuadmit_review_duration_seconds_count {count}")
        out += [
            "# HELP gpuadmit_bad_requests_total Requests that were not an answerable review, by HTTP status.",
            "# TYPE gpuadmit_bad_requests_total counter",
        ]
        for status, n in sorted(bad.items()):
            out.append(f'gpuadmit_bad_requests_total{{status="{status}"}} {n}')
        out += [
            "# HELP gpuadmit_reloads_total Reloads of rules and TLS certificates, by result.",
            "# TYPE gpuadmit_reloads_total counter",
        ]
        for (what, result), n in sorted(reloads.items()):
            out.append(f'gpuadmit_reloads_total{{what="{what}",result="{result}"}} {n}')
        out += [
            "# HELP gpuadmit_reviews_in_flight Reviews being read or judged now.",
            "# TYPE gpuadmit_reviews_in_flight gauge",
            f"gpuadmit_reviews_in_flight {self.in_flight}",
            "# HELP gpuadmit_rules Rules in the active rule set.",
            "# TYPE gpuadmit_rules gauge",
            f"gpuadmit_rules {self.rules_count}",
            "# HELP gpuadmit_rules_loaded_timestamp_seconds When the active rule set was compiled.",
            "# TYPE gpuadmit_rules_loaded_timestamp_seconds gauge",
            f"gpuadmit_rules_loaded_timestamp_seconds {_number(self.rules_loaded_at)}",
        ]
        return "\n".join(out) + "\n"

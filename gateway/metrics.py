"""The hub's Prometheus instruments, served by `GET /metrics` (gateway.observability).

No web framework here: the dispatch worker records into these without importing FastAPI.
"""

import math
from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

from gateway.errors import OUTCOMES, Outcome


class _FoldAnswered:
    """Registered before the instruments it folds into, so that every collection of the
    registry (`GET /metrics`, and the worker child's answer to it) counts the answered
    attempts tallied since the last one (`ANSWERED`) before it reads them."""

    def describe(self) -> Iterable[Metric]:
        return ()  # no series of its own (and no fold while the registry registers it)

    def collect(self) -> Iterable[Metric]:
        ANSWERED.fold()
        return ()


REGISTRY.register(_FoldAnswered())

ATTEMPTS = Counter(
    "recoghub_recognizer_attempts_total",
    "Requests sent to recognizers (each retry counts), by outcome.",
    ["outcome"],
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
ATTEMPT_LATENCY = Histogram(
    "recoghub_recognizer_latency_seconds",
    "Latency of answered recognizer requests, as the hub measured it.",
    buckets=LATENCY_BUCKETS,
)
# Children bound once: the dispatch path only calls .inc() (an answered attempt: `ANSWERED`).
ATTEMPTS_BY_OUTCOME = {outcome: ATTEMPTS.labels(outcome) for outcome in OUTCOMES}


class AnsweredTally:
    """Answered attempts, counted in plain numbers and folded into ATTEMPTS (outcome ok)
    and ATTEMPT_LATENCY when the registry is read. A Counter's and a Histogram's own calls
    take a lock each and run their checks: on every answer, that cost the sending process
    more than a tenth of the rest of its own work for it. Counted and folded on the
    event loop's thread (the registry is read there: `/metrics`, the worker child)."""

    __slots__ = ("count", "total", "buckets")

    # The histogram's upper bounds, +Inf last (as prometheus_client adds it).
    BOUNDS = (*LATENCY_BUCKETS, math.inf)

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * len(self.BOUNDS)

    def add(self, latency_s: float) -> None:
        self.count += 1
        self.total += latency_s
        # The first bucket whose bound is at least the latency, as Histogram.observe.
        self.buckets[bisect_left(self.BOUNDS, latency_s)] += 1

    def fold(self) -> None:
        if not self.count:
            return
        count, total, buckets = self.count, self.total, self.buckets
        self.count, self.total, self.buckets = 0, 0.0, [0] * len(self.BOUNDS)
        ATTEMPTS_BY_OUTCOME[Outcome.OK].inc(count)
        # Histogram.observe's own steps, by the bucket: prometheus_client has no public way
        # to add many observations at once.
        ATTEMPT_LATENCY._sum.inc(total)
        for bucket, n in zip(ATTEMPT_LATENCY._buckets, buckets, strict=True):
            if n:
                bucket.inc(n)


ANSWERED = AnsweredTally()

LOOP_LAG = Gauge(
    "recoghub_worker_loop_lag_seconds",
    "How late the dispatch worker's event loop ran over the last second (p99 of time): "
    "recorded latencies may include this much of the hub's own delay.",
)
IN_FLIGHT_LIMIT = Gauge(
    "recoghub_worker_in_flight_limit",
    "Requests the dispatch worker lets be in flight now (lowered while its loop runs late).",
)

NOTIFICATION_POSTS = Counter(
    "recoghub_notification_posts_total",
    "Webhook posts (gateway.notify), by what followed: delivered, retry (tried again "
    "later) or failed (given up: attempts used up, or an answer retrying cannot change).",
    ["result"],
)

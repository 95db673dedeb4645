"""The hub's Prometheus instruments, served by `GET /metrics` (gateway.observability).

No web framework here: the dispatch worker records into these without importing FastAPI.
"""

from prometheus_client import Counter, Gauge, Histogram

from gateway.errors import OUTCOMES

ATTEMPTS = Counter(
    "recoghub_recognizer_attempts_total",
    "Requests sent to recognizers (each retry counts), by outcome.",
    ["outcome"],
)
ATTEMPT_LATENCY = Histogram(
    "recoghub_recognizer_latency_seconds",
    "Latency of answered recognizer requests, as the hub measured it.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Children bound once: the dispatch hot path only calls .inc()/.observe().
ATTEMPTS_BY_OUTCOME = {outcome: ATTEMPTS.labels(outcome) for outcome in OUTCOMES}

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

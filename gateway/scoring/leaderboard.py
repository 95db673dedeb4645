"""The leaderboard: services of one run ranked by the run's primary metric (SPEC §6).

A row is a `ServiceScorer.result()` dict plus identity fields (provider, service, status).
Rows rank best first by the primary metric, a metric that does not apply (None) last;
ties go to the lower p50 latency, no latency last; rows still equal keep their order.
"""

from typing import Any

PRIMARY_METRICS: tuple[str, ...] = ("top5", "top1", "coverage_at_95", "coverage_at_99", "micro_ap")
DEFAULT_METRIC = "top5"


def validate_metric(metric: str) -> str:
    """Return `metric` if it is a primary metric; raise ValueError naming the allowed ones."""
    if metric not in PRIMARY_METRICS:
        allowed = ", ".join(PRIMARY_METRICS)
        raise ValueError(f"unknown metric {metric!r}; expected one of: {allowed}")
    return metric


def rank_rows(rows: list[dict[str, Any]], *, metric: str) -> list[dict[str, Any]]:
    """New rows, sorted best first by `metric` then p50 latency, each with a 1-based "rank".

    The input rows are not changed. Raises ValueError for a metric that is not one of
    PRIMARY_METRICS.
    """
    validate_metric(metric)
    ordered = sorted(rows, key=lambda row: _sort_key(row, metric))
    return [{**row, "rank": rank} for rank, row in enumerate(ordered, start=1)]


def _sort_key(row: dict[str, Any], metric: str) -> tuple[bool, float, bool, float]:
    value = row.get(metric)
    latency = row.get("latency_ms")
    p50 = latency.get("p50") if isinstance(latency, dict) else None
    # False sorts before True: rows with a figure come before rows without one.
    return (
        value is None,
        -value if value is not None else 0.0,
        p50 is None,
        p50 if p50 is not None else 0.0,
    )

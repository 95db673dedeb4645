"""The leaderboard: services of one run ranked by the run's primary metric (SPEC §6).

A row is a `ServiceScorer.result()` dict plus identity fields (provider, service, status).
Rows rank best first by the primary metric (`ranked_by`), a metric that does not apply
(None) last. Equal figures are broken by p50 latency (`tie_breaker`) only where the gap
is larger than the run's timing uncertainty (how late the hub's event loop ran while
sending, gateway.runs.engine.timing): a smaller gap is noise, and the teams share a rank.

Sharing is chained: among rows of equal metric, sorted by p50, a row shares the rank of
the one before it when their p50s are within the uncertainty. So two teams whose p50s
are within it are never ordered apart (A 1 ms, B 5 ms, C 9 ms with 5 ms of uncertainty
all share a rank, although A and C are 8 ms apart). Without a recorded uncertainty, or
without a p50, latency breaks no tie. Shared ranks are standard competition ranks
(1, 1, 3). This module is the one place ranks are computed.
"""

import math
from enum import StrEnum
from typing import Any


class MetricName(StrEnum):
    """The primary metrics a run may rank by (the choices of both CLIs' `--metric`)."""

    top5 = "top5"
    top1 = "top1"
    coverage_at_95 = "coverage_at_95"
    coverage_at_99 = "coverage_at_99"
    micro_ap = "micro_ap"


PRIMARY_METRICS: tuple[str, ...] = tuple(m.value for m in MetricName)
DEFAULT_METRIC = "top5"
# What breaks a tie of the primary metric, as named in every leaderboard (row field
# `tie_breaker`, CSV column, CLIs, dashboard).
TIE_BREAKER = "latency_p50"


def validate_metric(metric: str) -> str:
    """Return `metric` if it is a primary metric; raise ValueError naming the allowed ones."""
    if metric not in PRIMARY_METRICS:
        allowed = ", ".join(PRIMARY_METRICS)
        raise ValueError(f"unknown metric {metric!r}; expected one of: {allowed}")
    return metric


def rank_rows(
    rows: list[dict[str, Any]], *, metric: str, uncertainty_ms: float | None
) -> list[dict[str, Any]]:
    """New rows, sorted best first by `metric` then p50 latency, each with a 1-based
    "rank" (shared as the module doc says), "ranked_by", "tie_breaker" and
    "timing_uncertainty_ms" (`uncertainty_ms`).

    The input rows are not changed. Raises ValueError for a metric that is not one of
    PRIMARY_METRICS.
    """
    validate_metric(metric)
    ordered = sorted(rows, key=lambda row: _sort_key(row, metric))
    ranked: list[dict[str, Any]] = []
    rank = 0
    for position, row in enumerate(ordered, start=1):
        if not ranked or not _tied(ranked[-1], row, metric, uncertainty_ms):
            rank = position
        ranked.append(
            {
                **row,
                "rank": rank,
                "ranked_by": metric,
                "tie_breaker": TIE_BREAKER,
                "timing_uncertainty_ms": uncertainty_ms,
            }
        )
    return ranked


def _p50(row: dict[str, Any]) -> float | None:
    latency = row.get("latency_ms")
    p50 = latency.get("p50") if isinstance(latency, dict) else None
    return float(p50) if p50 is not None else None


def _tied(
    before: dict[str, Any], row: dict[str, Any], metric: str, uncertainty_ms: float | None
) -> bool:
    value, previous = row.get(metric), before.get(metric)
    if value is None or previous is None:
        return value is None and previous is None
    # Equal fractions of equal counts are equal floats; the tolerance only forgives the
    # last bit of a sum computed in another order.
    if not math.isclose(value, previous, rel_tol=1e-12, abs_tol=1e-12):
        return False
    p50, previous_p50 = _p50(row), _p50(before)
    if uncertainty_ms is None or p50 is None or previous_p50 is None:
        return True
    return abs(p50 - previous_p50) <= uncertainty_ms


def _sort_key(row: dict[str, Any], metric: str) -> tuple[bool, float, bool, float]:
    value = row.get(metric)
    p50 = _p50(row)
    # False sorts before True: rows with a figure come before rows without one.
    return (
        value is None,
        -value if value is not None else 0.0,
        p50 is None,
        p50 if p50 is not None else 0.0,
    )

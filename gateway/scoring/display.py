"""How the hub's figures are printed, one format for the organizer's CLI, the team CLI
and the dashboard: a fraction (top-1, top-5, coverage, µAP) as a percent with one
decimal, rounded half up from the float's exact value.

`Decimal(x * 100)` is the exact binary value of the product, so rounding it half up
gives what the dashboard's JavaScript `(x * 100).toFixed(1)` gives (the spec of
`Number.prototype.toFixed` picks the larger of two equally near results); Python's
`f"{x * 100:.1f}"` rounds half to even and would print 0.9625 as 96.2% where the
dashboard shows 96.3%.
"""

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

_TENTH = Decimal("0.1")


def percent(value: float | None, *, missing: str = "-") -> str:
    """`value` (a fraction) as a percent with one decimal, e.g. 0.9625 -> "96.3%";
    `missing` for None or a value that is not finite."""
    if value is None or not math.isfinite(value):
        return missing
    return f"{Decimal(value * 100).quantize(_TENTH, rounding=ROUND_HALF_UP)}%"


# How a primary metric is named in prose (the dashboard's dom.js METRICS say the same).
METRIC_LABELS: dict[str, str] = {
    "top1": "top-1",
    "top5": "top-5",
    "coverage_at_95": "coverage@95",
    "coverage_at_99": "coverage@99",
    "micro_ap": "µAP",
}


def ranking_note(*, ranked_by: str, uncertainty_ms: float | None) -> str:
    """The line under every leaderboard naming its ranking metric and its tie-breaker
    (gateway.scoring.leaderboard), e.g. "ranked by top-1; an equal top-1 is ordered by
    p50 latency only where the p50s differ by more than 9.3 ms (the timing uncertainty),
    else the rank is shared"."""
    metric = METRIC_LABELS.get(ranked_by, ranked_by)
    if uncertainty_ms is None:
        return (
            f"ranked by {metric}; an equal {metric} is a shared rank "
            "(no timing uncertainty recorded, so latency breaks no tie)"
        )
    return (
        f"ranked by {metric}; an equal {metric} is ordered by p50 latency only where the "
        f"p50s differ by more than {uncertainty_ms:.1f} ms (the timing uncertainty), "
        "else the rank is shared"
    )


def timing_note(uncertainty_ms: float) -> str:
    """The line printed under latency figures (SPEC §8), with what it means for a p50."""
    return (
        f"latencies are exact to about {uncertainty_ms:.1f} ms (how late the hub's event "
        "loop ran while sending): a p50 smaller than that is still measured, but two p50s "
        "closer than that are not told apart"
    )


def board_notes(row: Mapping[str, Any]) -> str:
    """The lines printed under a leaderboard, from any of its rows (each carries the
    run's `ranked_by` and `timing_uncertainty_ms`): how it is ranked, and how exact its
    latencies are."""
    uncertainty = row.get("timing_uncertainty_ms")
    lines = [ranking_note(ranked_by=str(row.get("ranked_by")), uncertainty_ms=uncertainty)]
    if uncertainty is not None:
        lines.append(timing_note(uncertainty))
    return "\n".join(lines)

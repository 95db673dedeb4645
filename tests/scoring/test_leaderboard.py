"""Leaderboard ranking: primary metric first, p50 latency on ties only beyond the run's
timing uncertainty, None last."""

from typing import Any

import pytest

from gateway.scoring.leaderboard import (
    DEFAULT_METRIC,
    PRIMARY_METRICS,
    rank_rows,
    validate_metric,
)


def row(
    name: str, *, top5: float | None, p50: float | None, **metrics: float | None
) -> dict[str, Any]:
    latency = dict.fromkeys(["p50", "p90", "p99", "max", "mean"], p50)
    return {"service_name": name, "top5": top5, "latency_ms": latency, **metrics}


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [r["service_name"] for r in rows]


def test_primary_metrics() -> None:
    assert PRIMARY_METRICS == ("top5", "top1", "coverage_at_95", "coverage_at_99", "micro_ap")
    assert DEFAULT_METRIC == "top5"


def test_ranks_best_first_with_none_last() -> None:
    rows = [
        row("none", top5=None, p50=1.0),
        row("low", top5=0.2, p50=1.0),
        row("high", top5=0.9, p50=50.0),
        row("zero", top5=0.0, p50=1.0),
    ]
    ranked = rank_rows(rows, metric="top5", uncertainty_ms=5.0)
    assert names(ranked) == ["high", "low", "zero", "none"]
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4]


def test_ties_go_to_the_lower_p50_only_beyond_the_timing_uncertainty() -> None:
    rows = [
        row("slow", top5=0.5, p50=30.0),
        row("fast", top5=0.5, p50=3.0),
        row("first-of-equals", top5=0.5, p50=30.0),
        row("noise", top5=0.5, p50=34.0),
        row("best", top5=0.6, p50=99.0),
    ]
    ranked = rank_rows(rows, metric="top5", uncertainty_ms=5.0)
    assert names(ranked) == ["best", "fast", "slow", "first-of-equals", "noise"]
    # 27 ms apart is beyond 5 ms of uncertainty; 30 vs 30 vs 34 ms is noise: shared.
    assert [r["rank"] for r in ranked] == [1, 2, 3, 3, 3]
    assert {(r["ranked_by"], r["tie_breaker"], r["timing_uncertainty_ms"]) for r in ranked} == {
        ("top5", "latency_p50", 5.0)
    }


def test_the_issue_s_two_teams_within_the_uncertainty_share_first_place() -> None:
    """7.5 vs 9.0 ms on a page exact to about 9.3 ms: the same top-1, the same rank."""
    rows = [row("b", top5=None, p50=9.0, top1=0.987), row("a", top5=None, p50=7.5, top1=0.987)]
    assert [r["rank"] for r in rank_rows(rows, metric="top1", uncertainty_ms=9.3)] == [1, 1]
    assert [r["rank"] for r in rank_rows(rows, metric="top1", uncertainty_ms=1.0)] == [1, 2]


def test_shared_ranks_chain_so_no_pair_within_the_uncertainty_is_split() -> None:
    rows = [row(n, top5=0.5, p50=p) for n, p in (("a", 1.0), ("b", 5.0), ("c", 9.0))]
    rows.append(row("d", top5=0.5, p50=20.0))
    ranked = rank_rows(rows, metric="top5", uncertainty_ms=5.0)
    assert [(r["service_name"], r["rank"]) for r in ranked] == [
        ("a", 1),
        ("b", 1),
        ("c", 1),
        ("d", 4),
    ]


def test_without_a_recorded_uncertainty_or_a_p50_latency_breaks_no_tie() -> None:
    rows = [row("slow", top5=0.5, p50=300.0), row("fast", top5=0.5, p50=3.0)]
    assert [r["rank"] for r in rank_rows(rows, metric="top5", uncertainty_ms=None)] == [1, 1]
    silent = [row("fast", top5=0.5, p50=3.0), row("silent", top5=0.5, p50=None)]
    ranked = rank_rows(silent, metric="top5", uncertainty_ms=1.0)
    assert [(r["service_name"], r["rank"]) for r in ranked] == [("fast", 1), ("silent", 1)]
    none = [row("x", top5=None, p50=1.0), row("y", top5=None, p50=90.0)]
    assert [r["rank"] for r in rank_rows(none, metric="top5", uncertainty_ms=1.0)] == [1, 1]


def test_ranks_by_the_named_metric() -> None:
    rows = [
        row("a", top5=0.9, p50=1.0, micro_ap=0.1),
        row("b", top5=0.1, p50=1.0, micro_ap=0.8),
        row("c", top5=0.5, p50=1.0, micro_ap=None),
    ]
    assert names(rank_rows(rows, metric="micro_ap", uncertainty_ms=5.0)) == ["b", "a", "c"]


def test_rows_without_latency_figures_rank_after_those_with() -> None:
    rows = [{"service_name": "x", "top1": 0.5, "latency_ms": None}, row("y", top5=0, p50=9.0)]
    rows[1]["top1"] = 0.5
    assert names(rank_rows(rows, metric="top1", uncertainty_ms=5.0)) == ["y", "x"]


def test_input_rows_are_not_changed() -> None:
    rows = [row("a", top5=0.5, p50=1.0)]
    ranked = rank_rows(rows, metric="top5", uncertainty_ms=5.0)
    assert "rank" not in rows[0]
    assert ranked[0] == {
        **rows[0],
        "rank": 1,
        "ranked_by": "top5",
        "tie_breaker": "latency_p50",
        "timing_uncertainty_ms": 5.0,
    }
    assert rank_rows([], metric="top1", uncertainty_ms=None) == []


def test_unknown_metric_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="unknown metric 'top3'.*top5, top1, coverage_at_95"):
        rank_rows([], metric="top3", uncertainty_ms=None)
    with pytest.raises(ValueError, match="micro_ap"):
        validate_metric("latency")
    assert validate_metric("coverage_at_99") == "coverage_at_99"

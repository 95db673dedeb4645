"""Leaderboard ranking: primary metric first, p50 latency on ties, None last."""

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
    ranked = rank_rows(rows, metric="top5")
    assert names(ranked) == ["high", "low", "zero", "none"]
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4]


def test_ties_go_to_the_lower_p50_with_no_latency_last() -> None:
    rows = [
        row("slow", top5=0.5, p50=30.0),
        row("silent", top5=0.5, p50=None),
        row("fast", top5=0.5, p50=3.0),
        row("first-of-equals", top5=0.5, p50=30.0),
    ]
    ranked = rank_rows(rows, metric="top5")
    assert names(ranked) == ["fast", "slow", "first-of-equals", "silent"]
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4]


def test_ranks_by_the_named_metric() -> None:
    rows = [
        row("a", top5=0.9, p50=1.0, micro_ap=0.1),
        row("b", top5=0.1, p50=1.0, micro_ap=0.8),
        row("c", top5=0.5, p50=1.0, micro_ap=None),
    ]
    assert names(rank_rows(rows, metric="micro_ap")) == ["b", "a", "c"]


def test_rows_without_latency_figures_rank_after_those_with() -> None:
    rows = [{"service_name": "x", "top1": 0.5, "latency_ms": None}, row("y", top5=0, p50=9.0)]
    rows[1]["top1"] = 0.5
    assert names(rank_rows(rows, metric="top1")) == ["y", "x"]


def test_input_rows_are_not_changed() -> None:
    rows = [row("a", top5=0.5, p50=1.0)]
    ranked = rank_rows(rows, metric="top5")
    assert "rank" not in rows[0]
    assert ranked[0] == {**rows[0], "rank": 1}
    assert rank_rows([], metric="top1") == []


def test_unknown_metric_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="unknown metric 'top3'.*top5, top1, coverage_at_95"):
        rank_rows([], metric="top3")
    with pytest.raises(ValueError, match="micro_ap"):
        validate_metric("latency")
    assert validate_metric("coverage_at_99") == "coverage_at_99"

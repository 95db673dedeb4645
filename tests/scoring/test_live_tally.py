"""Live tallies (gateway.scoring.live) against the full scorer: any results, in any
order, in any split into batches, give the full scorer's counts and top-k exactly, and
its latency percentiles within the documented bound."""

import math
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import OUTCOMES
from gateway.scoring.live import MAX_BUCKETS, PERCENTILE_ERROR, LiveTally, bucket_of
from gateway.scoring.metrics import ServiceScorer

T0 = datetime(2026, 1, 1, 12, 0, 0)
TAGS = ["dog", "Dog ", "cat", "cow", "owl", "ant", "bee", "elk"]

results = st.lists(
    st.fixed_dictionaries(
        {
            "outcome": st.sampled_from(OUTCOMES),
            "tags": st.lists(
                st.tuples(st.sampled_from(TAGS), st.floats(0, 1, allow_nan=False)), max_size=7
            ),
            "truth": st.lists(st.sampled_from(TAGS[2:] + ["dog", ""]), max_size=2),
            "latency_ms": st.one_of(st.none(), st.floats(0.01, 60_000.0)),
            "finished_ms": st.integers(0, 10**7),
        }
    ),
    max_size=60,
)


def full_score(rows: list[dict[str, Any]]) -> dict[str, Any]:
    scorer = ServiceScorer()
    for r in rows:
        scorer.add(
            outcome=r["outcome"], tags=r["tags"], truth=r["truth"], latency_ms=r["latency_ms"]
        )
    return scorer.result(elapsed_s=None)


def tally_of(rows: list[dict[str, Any]], cuts: list[int]) -> LiveTally:
    total = LiveTally()
    for part in _split(rows, cuts):
        batch = LiveTally()
        for r in part:
            batch.add(
                outcome=r["outcome"],
                tags=[list(pair) for pair in r["tags"]],
                truth=r["truth"],
                latency_ms=r["latency_ms"],
                finished_at=T0 + timedelta(milliseconds=r["finished_ms"]),
            )
        # Through the stored form, as a worker's batch meets the committed row.
        total = LiveTally.of_columns(total.columns())
        total.merge(LiveTally.of_columns(batch.columns()))
    return total


def _split(rows: list[Any], cuts: list[int]) -> list[list[Any]]:
    points = sorted({c % (len(rows) + 1) for c in cuts} | {0, len(rows)})
    return [rows[a:b] for a, b in zip(points, points[1:], strict=False)]


@settings(max_examples=300, deadline=None)
@given(rows=results, cuts=st.lists(st.integers(0, 100), max_size=5), seed=st.randoms())
def test_a_tally_in_batches_equals_the_full_scorer(
    rows: list[dict[str, Any]], cuts: list[int], seed: Any
) -> None:
    shuffled = list(rows)
    seed.shuffle(shuffled)
    live = tally_of(shuffled, cuts).result()
    full = full_score(rows)
    for name in ("images", "top1", "top5", "outcomes"):
        assert live[name] == full[name], name
    assert live["coverage_at_95"] is None and live["micro_ap"] is None
    got, want = live["latency_ms"], full["latency_ms"]
    assert got["max"] == want["max"]
    if want["mean"] is None:
        assert got == want
        return
    assert got["mean"] == pytest.approx(want["mean"], rel=1e-12)
    for name in ("p50", "p90", "p99"):
        assert got[name] == pytest.approx(want[name], rel=PERCENTILE_ERROR + 1e-9), name


def test_throughput_runs_from_the_first_request_sent_to_the_last_answer() -> None:
    tally = LiveTally()
    for second, latency in [(4, 5.0), (1, 500.0), (3, 1.0)]:
        tally.add(
            outcome="ok",
            tags=[["a", 1.0]],
            truth=["a"],
            latency_ms=latency,
            finished_at=T0 + timedelta(seconds=second),
        )
    # The first answer (at 1 s) took 0.5 s: sending began at 0.5 s, the last came at 4 s.
    assert tally.result()["images_per_s"] == pytest.approx(3 / 3.5)


def test_latencies_past_the_kept_range_land_in_the_end_buckets() -> None:
    assert bucket_of(0.0) == bucket_of(1e-9) == bucket_of(-1.0)
    assert bucket_of(1e12) == bucket_of(1e7)
    assert bucket_of(1e7) - bucket_of(0.0) == MAX_BUCKETS - 1
    tally = LiveTally()
    for latency in (0.0, 1e9):
        tally.add(outcome="ok", tags=[], truth=[], latency_ms=latency, finished_at=None)
    summary = tally.latency_summary()
    assert summary["p50"] == 0.0 and summary["p99"] == 1e9  # clamped to the exact min, max
    assert math.isclose(summary["mean"] or 0.0, 5e8)

"""Live tallies merged, stored and read back (gateway.scoring.live): two workers' tallies
merged equal one tally of all their results, in any order; the stored row reads back as
the same tally; throughput, top-k and the latency figures take exact values on small
examples a user can check by hand."""

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import OUTCOMES
from gateway.scoring.live import (
    MAX_MS,
    MIN_MS,
    PERCENTILE_ERROR,
    LiveTally,
    bucket_middle,
    bucket_of,
    buckets_of_text,
)
from gateway.scoring.metrics import ServiceScorer, latency_summary, truth_set

T0 = datetime(2026, 1, 1, 12, 0, 0)
TAGS = ["dog", "Dog ", "cat", "cow", "owl", "ant", "bee", "elk"]

results = st.lists(
    st.fixed_dictionaries(
        {
            "outcome": st.sampled_from(OUTCOMES),
            "tags": st.lists(st.sampled_from(TAGS), max_size=7),
            "truth": st.lists(st.sampled_from(TAGS[2:] + ["dog", ""]), max_size=3),
            "latency_ms": st.one_of(st.none(), st.floats(0.01, 60_000.0)),
            # A narrow range of finish times: ties between answers are common.
            "finished_ms": st.one_of(st.none(), st.integers(0, 3_000)),
        }
    ),
    max_size=40,
)


def _add(tally: LiveTally, r: dict[str, Any]) -> None:
    finished = r["finished_ms"]
    tally.add(
        outcome=r["outcome"],
        tags=[[tag, 0.5] for tag in r["tags"]],
        truth=r["truth"],
        latency_ms=r["latency_ms"],
        finished_at=None if finished is None else T0 + timedelta(milliseconds=finished),
    )


def _one_tally(rows: list[dict[str, Any]]) -> LiveTally:
    tally = LiveTally()
    for r in rows:
        _add(tally, r)
    return tally


def _without_sum(columns: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in columns.items() if k != "latency_sum"}


def _answer(
    tally: LiveTally,
    *,
    at_s: float,
    latency_ms: float | None,
    outcome: str = "ok",
    tags: list[str] | None = None,
    truth: list[str] | None = None,
) -> None:
    tally.add(
        outcome=outcome,
        tags=[[tag, 0.9] for tag in tags or []],
        truth=truth or [],
        latency_ms=latency_ms,
        finished_at=T0 + timedelta(seconds=at_s),
    )


@settings(max_examples=300, deadline=None)
@given(
    rows=results,
    cuts=st.lists(st.integers(0, 100), max_size=4),
    seed=st.randoms(),
)
def test_merged_worker_tallies_equal_one_tally_of_all_results(
    rows: list[dict[str, Any]], cuts: list[int], seed: Any
) -> None:
    whole = _one_tally(rows)
    shuffled = list(rows)
    seed.shuffle(shuffled)
    points = sorted({c % (len(rows) + 1) for c in cuts} | {0, len(rows)})
    merged = LiveTally()  # the row before any batch: every merge starts from empty
    for a, b in zip(points, points[1:], strict=False):
        stored = LiveTally.of_columns(merged.columns())
        stored.merge(LiveTally.of_columns(_one_tally(shuffled[a:b]).columns()))
        merged = stored
    assert _without_sum(merged.columns()) == _without_sum(whole.columns())
    assert merged.latency_sum == pytest.approx(whole.latency_sum, rel=1e-12)
    assert merged.result()["images_per_s"] == whole.result()["images_per_s"]
    # The stored N_gt of µAP: the distinct true tags of every image.
    assert whole.true_pairs == sum(len(truth_set(r["truth"])) for r in rows)
    # Throughput as the full rescore times it: from the first answer's send (the
    # earlier send on a tie) to the last answer.
    done = [r for r in rows if r["finished_ms"] is not None]
    if not done:
        assert whole.elapsed_s() is None
        return
    first = min(r["finished_ms"] for r in done)
    sent = min(
        T0
        + timedelta(milliseconds=r["finished_ms"])
        - timedelta(milliseconds=r["latency_ms"] or 0.0)
        for r in done
        if r["finished_ms"] == first
    )
    seconds = (
        T0 + timedelta(milliseconds=max(r["finished_ms"] for r in done)) - sent
    ).total_seconds()
    assert whole.elapsed_s() == (seconds if seconds > 0 else None)


def test_the_stored_row_reads_back_as_the_same_tally() -> None:
    tally = LiveTally()
    _answer(tally, at_s=1, latency_ms=250.0, tags=["cat"], truth=["cat", "cow"])
    _answer(tally, at_s=2, latency_ms=40.0, tags=["owl", "cat"], truth=["cat"])
    _answer(tally, at_s=3, latency_ms=None, outcome="timeout", truth=["elk"])
    columns = tally.columns()
    assert columns["true_pairs"] == 4 and columns["latency_min"] == 40.0
    assert LiveTally.of_columns(columns) == tally
    assert LiveTally.of_columns(columns).result() == tally.result()


@given(
    st.dictionaries(
        st.integers(min_value=-700, max_value=1700), st.integers(min_value=1, max_value=10**12)
    ),
    st.sampled_from([(", ", ": "), (",", ":")]),
)
def test_a_histogram_reads_back_from_its_json_text_as_either_database_keeps_it(
    buckets: dict[int, int], separators: tuple[str, str]
) -> None:
    """The polled reads decode the histogram's text by a shortcut (`buckets_of_text`):
    it gives what the column held, in whatever key order and spacing it was kept."""
    tally = LiveTally(latency_buckets=buckets)
    stored = tally.columns()["latency_buckets"]
    for keys in (list(stored), sorted(stored, key=lambda key: (len(key), key))):
        text = json.dumps({key: stored[key] for key in keys}, separators=separators)
        assert buckets_of_text(text) == buckets


def test_a_row_stored_before_an_outcome_existed_reads_back_with_zero_for_it() -> None:
    row = {**LiveTally().columns(), "images": 3, "outcomes": {"ok": 3}}
    assert LiveTally.of_columns(row).result()["outcomes"] == {
        name: 3 if name == "ok" else 0 for name in OUTCOMES
    }
    empty = {**LiveTally().columns(), "outcomes": None, "latency_buckets": None}
    assert LiveTally.of_columns(empty) == LiveTally()


def test_outcome_counts_missing_from_a_tally_count_from_zero() -> None:
    tally = LiveTally(outcomes={"ok": 2})
    tally.add(outcome="timeout", tags=None, truth=[], latency_ms=None, finished_at=None)
    into = LiveTally(outcomes={})
    into.merge(tally)
    assert into.outcomes == {"ok": 2, "timeout": 1}
    assert into.result()["outcomes"] == {
        name: {"ok": 2, "timeout": 1}.get(name, 0) for name in OUTCOMES
    }


def test_top_k_counts_the_fifth_distinct_tag_and_not_the_sixth() -> None:
    five = ["ant", "bee", "cow", "elk"]
    tally, scorer = LiveTally(), ServiceScorer()
    for tags in (
        ["owl"],  # first place
        ["owl", "cat"],  # first place
        [*five, "owl"],  # fifth place
        ["ant", "Ant ", *five[1:], "owl"],  # a repeat takes no place: fifth
        [*five, "cat", "owl"],  # sixth place: not in the top 5
        [],  # no answer
    ):
        tally.add(
            outcome="ok",
            tags=[[t, 0.5] for t in tags],
            truth=["Owl"],
            latency_ms=1.0,
            finished_at=None,
        )
        scorer.add(outcome="ok", tags=[(t, 0.5) for t in tags], truth=["Owl"], latency_ms=1.0)
    tally.add(
        outcome="timeout", tags=[["owl", 1.0]], truth=["owl"], latency_ms=None, finished_at=None
    )
    scorer.add(outcome="timeout", tags=[], truth=["owl"], latency_ms=None)
    got, want = tally.result(), scorer.result(elapsed_s=None)
    assert (got["top1"], got["top5"]) == (2 / 7, 4 / 7)
    assert (got["top1"], got["top5"]) == (want["top1"], want["top5"])
    assert set(got) == set(want) and got["coverage_at_99"] is None


def test_latency_figures_of_one_to_a_hundred_ms() -> None:
    tally = LiveTally()
    latencies = [float(ms) for ms in range(100, 0, -1)]  # the slowest first
    for ms in latencies:
        _answer(tally, at_s=1, latency_ms=ms)
    _answer(tally, at_s=1, latency_ms=5_000.0, outcome="timeout")  # not an ok latency
    _answer(tally, at_s=1, latency_ms=None)  # an ok answer with no latency
    got, exact = tally.latency_summary(), latency_summary(latencies)
    assert (got["max"], got["mean"]) == (100.0, 50.5)
    assert tally.latency_min == 1.0 and tally.latency_count == 100
    for name, value in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0)):
        assert exact[name] == value
        assert got[name] == pytest.approx(value, rel=PERCENTILE_ERROR), name


def test_latency_figures_of_one_and_two_answers_are_exact() -> None:
    one = LiveTally()
    _answer(one, at_s=1, latency_ms=7.25)
    assert one.latency_summary() == dict.fromkeys(("p50", "p90", "p99", "max", "mean"), 7.25)
    _answer(one, at_s=2, latency_ms=3.5)
    assert one.latency_summary() == {
        "p50": 3.5,
        "p90": 7.25,
        "p99": 7.25,
        "max": 7.25,
        "mean": 5.375,
    }
    assert LiveTally().latency_summary() == dict.fromkeys(("p50", "p90", "p99", "max", "mean"))


@given(st.floats(MIN_MS, MAX_MS))
def test_a_bucket_middle_is_within_the_bound_of_every_latency_in_it(ms: float) -> None:
    assert bucket_middle(bucket_of(ms)) == pytest.approx(ms, rel=PERCENTILE_ERROR + 1e-9)


def test_merging_keeps_the_extreme_latencies_whichever_side_holds_them() -> None:
    def of(*latencies: float) -> LiveTally:
        tally = LiveTally()
        for ms in latencies:
            _answer(tally, at_s=1, latency_ms=ms)
        return tally

    for mine, other in ((of(5.0, 500.0), of(1.0, 50.0)), (of(1.0, 50.0), of(5.0, 500.0))):
        mine.merge(other)
        assert (mine.latency_min, mine.latency_max) == (1.0, 500.0)
        assert mine.latency_summary()["p50"] == pytest.approx(5.0, rel=PERCENTILE_ERROR)
    empty = LiveTally()
    empty.merge(of(2.0, 20.0))
    assert (empty.latency_min, empty.latency_max) == (2.0, 20.0)


def test_throughput_of_one_answer_is_unknown_and_of_half_a_second_exact() -> None:
    tally = LiveTally()
    _answer(tally, at_s=1, latency_ms=None, outcome="connect_error")
    assert tally.elapsed_s() is None and tally.result()["images_per_s"] is None
    _answer(tally, at_s=1.5, latency_ms=None, outcome="timeout")
    assert tally.elapsed_s() == 0.5 and tally.result()["images_per_s"] == 4.0


@pytest.mark.parametrize("latencies", [(300.0, 100.0), (100.0, 300.0)])
def test_on_a_tie_for_the_first_answer_throughput_counts_from_the_earlier_send(
    latencies: tuple[float, float],
) -> None:
    tally = LiveTally()
    for ms in latencies:
        _answer(tally, at_s=1, latency_ms=ms)
    _answer(tally, at_s=2, latency_ms=10.0)
    assert tally.elapsed_s() == pytest.approx(1.3)


def test_merged_throughput_counts_from_the_first_answer_not_the_earliest_send() -> None:
    def of(at_s: float, latency_ms: float) -> LiveTally:
        tally = LiveTally()
        _answer(tally, at_s=at_s, latency_ms=latency_ms)
        return tally

    # The first answer (10 s, sent at 9 s) starts the clock, although the answer at 11 s
    # was sent at 6 s: as the full rescore times it.
    for mine, other in ((of(10, 1_000.0), of(11, 5_000.0)), (of(11, 5_000.0), of(10, 1_000.0))):
        mine.merge(other)
        assert mine.elapsed_s() == 2.0
        assert mine.result()["images_per_s"] == 1.0
    empty = LiveTally()
    empty.merge(of(10, 1_000.0))
    assert (empty.first_finished_at, empty.first_sent_at, empty.last_finished_at) == (
        T0 + timedelta(seconds=10),
        T0 + timedelta(seconds=9),
        T0 + timedelta(seconds=10),
    )
    assert empty.elapsed_s() == 1.0


@settings(max_examples=60)
@given(kept=results, taken=results)
def test_taking_back_failed_results_leaves_the_tally_of_the_others(
    kept: list[dict[str, Any]], taken: list[dict[str, Any]]
) -> None:
    """A re-send (gateway.runs.resend) takes failed results back: the counters are those
    of the results kept, whatever was added in between."""
    failed = [{**r, "finished_ms": None} for r in taken if r["outcome"] != "ok"]
    tally = _one_tally(kept + failed)
    for r in failed:
        tally.remove(outcome=r["outcome"], truth=r["truth"])
    expected = _one_tally(kept).columns()
    assert _without_sum(tally.columns()) == _without_sum(expected)


def test_an_ok_result_or_one_never_counted_cannot_be_taken_back() -> None:
    tally = LiveTally()
    tally.add(outcome="ok", tags=[["cat", 0.9]], truth=["cat"], latency_ms=5.0, finished_at=T0)
    with pytest.raises(ValueError, match="ok result"):
        tally.remove(outcome="ok", truth=["cat"])
    with pytest.raises(ValueError, match="no timeout result"):
        tally.remove(outcome="timeout", truth=["cat"])

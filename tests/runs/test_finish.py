"""Scores, verdicts and the end of a run (SPEC §4, §6), read from recorded work items on
SQLite and PostgreSQL. The result page is made small so that every run here spans
several pages, the way a run of thousands of images does."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, update

from gateway.config import Settings
from gateway.runs import finish, lifecycle, models
from gateway.runs.engine.store import ClaimedItem
from gateway.scoring.metrics import ServiceScorer
from tests.runs.builders import run_state
from tests.runs.recorded import FAR_AHEAD, T0, failed, ok, open_run, record, status_of


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(finish, "PAGE", 3)
    return 3


@pytest.mark.parametrize("n", [13, 14])
def test_done_items_yield_every_recorded_item_once_in_seq_order(
    run_engine: Engine, settings: Settings, data_dir: Path, n: int
) -> None:
    # 12 of 13 recorded is four full pages of 3; 13 of 14 ends on a partial page.
    lane, other = open_run(run_engine, settings, data_dir, n)
    recorded = [p for p in range(n) if p != 5]
    record(run_engine, lane, lambda p, item, truth: ok(truth), iter(recorded))
    record(run_engine, other, lambda p, item, truth: ok(truth))
    queries: list[str] = []

    def count(*args: Any) -> None:
        queries.append(args[2])

    with run_engine.connect() as conn:
        event.listen(conn, "after_cursor_execute", count)
        rows = list(finish.done_items(conn, run_service_id=lane.id, columns=[models.IMAGES.c.id]))
    # Fetched a page of 3 at a time: the last page is the first one not full.
    assert len(queries) == len(recorded) // 3 + 1
    assert [row.seq for row in rows] == [lane.items[p].seq for p in recorded]
    assert [row.id for row in rows] == [lane.items[p].image_id for p in recorded]


def test_scores_of_a_run_over_several_pages_count_each_image_once(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    lane, other = open_run(run_engine, settings, data_dir, 10)

    def answer(position: int, item: ClaimedItem, truth: str) -> dict[str, Any]:
        if position in (2, 7):
            return failed("timeout", "no answer in 5 s")
        if position % 3 == 0:  # 0, 3, 6, 9: the true label ranked second
            return {**ok(truth, latency_ms=40.0), "tags": [["nope", 0.8], [truth, 0.5]]}
        return ok(truth, latency_ms=float(position))  # 1, 4, 5, 8: right at top-1

    record(run_engine, lane, answer)
    record(run_engine, other, lambda p, item, truth: ok("nope"))
    with run_engine.connect() as conn:
        scores = finish.service_scores(conn, run_service_id=lane.id)
        others = finish.service_scores(conn, run_service_id=other.id)
    assert scores["images"] == 10
    assert scores["outcomes"]["ok"] == 8 and scores["outcomes"]["timeout"] == 2
    assert scores["top1"] == pytest.approx(0.4)
    assert scores["top5"] == pytest.approx(0.8)
    assert scores["latency_ms"]["max"] == 40.0
    assert scores["latency_ms"]["mean"] == pytest.approx((1 + 4 + 5 + 8 + 4 * 40) / 8)
    assert others["images"] == 10 and others["top5"] == 0.0


def test_throughput_runs_from_the_first_request_sent_to_the_last_answer(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    lane, _ = open_run(run_engine, settings, data_dir, 4)
    # Finished at 1, 2, 3 and 4 s; the first answer took 0.5 s, so sending began at 0.5 s.
    record(
        run_engine,
        lane,
        lambda p, item, truth: ok(
            truth, latency_ms=500.0 if p == 3 else 100.0, at=T0 + timedelta(seconds=4 - p)
        ),
    )
    with run_engine.connect() as conn:
        assert finish.elapsed_s(conn, run_service_id=lane.id) == pytest.approx(3.5)
        assert finish.service_scores(conn, run_service_id=lane.id)["images_per_s"] == pytest.approx(
            4 / 3.5
        )


def test_no_throughput_before_any_time_has_passed(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    lane, _ = open_run(run_engine, settings, data_dir, 2)
    with run_engine.connect() as conn:
        assert finish.elapsed_s(conn, run_service_id=lane.id) is None
    # One failed request: no latency, so no time between sending and the last answer.
    record(run_engine, lane, lambda p, item, truth: failed("connect_error"), iter([0]))
    with run_engine.connect() as conn:
        assert finish.elapsed_s(conn, run_service_id=lane.id) is None
        assert finish.service_scores(conn, run_service_id=lane.id)["images_per_s"] is None


def test_throughput_of_a_single_quick_answer(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    (lane,) = open_run(run_engine, settings, data_dir, 1, services=1)
    record(run_engine, lane, lambda p, item, truth: ok(truth, latency_ms=250.0))
    with run_engine.connect() as conn:
        assert finish.elapsed_s(conn, run_service_id=lane.id) == pytest.approx(0.25)
        assert finish.service_scores(conn, run_service_id=lane.id)["images_per_s"] == pytest.approx(
            4.0
        )


FAILURES = {
    1: failed("http_error", "  Service Unavailable  ", status=503),
    2: failed("timeout", "x" * 300),
    4: failed("connect_error", None),
    5: failed("bad_format", "entry 1 has no score"),
}


def mixed(position: int, item: ClaimedItem, truth: str) -> dict[str, Any]:
    return FAILURES.get(position) or ok(truth)


def test_a_dry_run_fails_a_service_with_the_counts_and_first_errors(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    lane, other = open_run(run_engine, settings, data_dir, 6)
    record(run_engine, lane, mixed)
    record(run_engine, other, lambda p, item, truth: failed("too_large", "over 64 KiB"))
    with run_engine.begin() as conn:
        verdict = finish.judge(conn, run_service_id=lane.id, phase="dryrun")
    assert verdict.status == "failed" and verdict.scores["images"] == 6
    assert verdict.reason is not None
    head, errors = verdict.reason.split(". First errors: ")
    assert head.startswith("4 of 6 images did not end ok (ok 2, ")
    assert all(f"{name} 1" in head for name in ("timeout", "connect_error", "http_error"))
    assert errors.split("; ") == [
        f"request req-{lane.id}-1: http_error (HTTP 503): Service Unavailable",
        f"request req-{lane.id}-2: timeout: " + "x" * 199 + "…",
        f"request req-{lane.id}-4: connect_error: ",
    ]


def test_an_evaluation_passes_a_service_with_any_ok_answer(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    lane, other = open_run(run_engine, settings, data_dir, 6, phase="evaluation")
    record(run_engine, lane, mixed)
    slow = "s" * 200  # a detail of 200 characters is shown whole
    record(run_engine, other, lambda p, item, truth: failed("timeout", slow))
    with run_engine.begin() as conn:
        passed = finish.judge(conn, run_service_id=lane.id, phase="evaluation")
        failing = finish.judge(conn, run_service_id=other.id, phase="evaluation")
        empty = finish.judge(
            conn, run_service_id=other.id, phase="evaluation", scores={"images": 0, "outcomes": {}}
        )
    assert (passed.status, passed.reason) == ("passed", None)
    assert failing.status == "failed" and failing.reason is not None
    assert failing.reason.startswith("no image ended ok (ok 0, timeout 6")
    assert f"First errors: request req-{other.id}-0: timeout: {slow}; " in failing.reason
    assert (empty.status, empty.reason) == ("passed", None)
    with run_engine.begin() as conn:
        one_ok = finish.judge(
            conn,
            run_service_id=other.id,
            phase="evaluation",
            scores={"images": 3, "outcomes": {"ok": 1, "timeout": 2}},
        )
    assert one_ok.status == "passed"


def test_a_failure_without_recorded_errors_gives_only_the_counts(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    lane, _ = open_run(run_engine, settings, data_dir, 1)
    with run_engine.begin() as conn:
        verdict = finish.judge(
            conn,
            run_service_id=lane.id,
            phase="dryrun",
            scores={"images": 1, "outcomes": {"timeout": 1}},  # no "ok" count: none
        )
    assert verdict.status == "failed"
    assert verdict.reason is not None
    assert verdict.reason.startswith(
        "1 of 1 images did not end ok (ok 0, timeout 1, connect_error 0, http_error 0"
    )
    assert verdict.reason.endswith(")") and "First errors" not in verdict.reason


def test_a_service_is_closed_only_once_every_item_is_recorded(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    lane, other = open_run(run_engine, settings, data_dir, 5)
    record(run_engine, lane, lambda p, item, truth: ok(truth), iter([0, 1]))
    with run_engine.begin() as conn:
        # Give one leased item back: the lane has items pending, leased and done.
        lifecycle.items.give_back(conn, worker_id="w", item_ids=[lane.items[4].item_id])
        assert finish.unfinished(conn, run_service_id=lane.id) == 3
        assert not finish.finish_service(conn, run_service_id=lane.id, phase="dryrun")
        conn.execute(  # the other lane was marked ongoing by its first claim
            update(models.RUN_SERVICES)
            .where(models.RUN_SERVICES.c.id == other.id)
            .values(status="ongoing")
        )
    assert status_of(run_engine, lane) == ("pending", None, None)
    record(run_engine, other, lambda p, item, truth: ok(truth))
    with run_engine.begin() as conn:
        assert finish.unfinished(conn, run_service_id=other.id) == 0
        assert finish.finish_service(conn, run_service_id=other.id, phase="dryrun")
        assert not lifecycle.complete_run(conn, run_id=lane.run_id, now=T0)
    status, reason, scores = status_of(run_engine, other)
    assert (status, reason) == ("passed", None)
    assert scores is not None and scores["images"] == 5 and scores["top1"] == 1.0
    assert run_state(run_engine, lane.run_id) == "running"


def test_a_final_verdict_is_not_overwritten(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    lane, _ = open_run(run_engine, settings, data_dir, 2)
    record(run_engine, lane, lambda p, item, truth: ok(truth))
    with run_engine.begin() as conn:
        conn.execute(
            update(models.RUN_SERVICES)
            .where(models.RUN_SERVICES.c.id == lane.id)
            .values(status="failed", reason="judged by another worker")
        )
        assert finish.finish_service(conn, run_service_id=lane.id, phase="dryrun")
    assert status_of(run_engine, lane)[:2] == ("failed", "judged by another worker")


def test_a_deadline_verdict_leaves_a_final_service_as_it_is(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    """The deadline judges open and paused services only: one another worker closed
    meanwhile keeps its verdict (the guard `finish_service` has, issue 21)."""
    lane, other = open_run(run_engine, settings, data_dir, 2)
    record(run_engine, lane, lambda p, item, truth: ok(truth))
    with run_engine.begin() as conn:
        assert finish.finish_service(conn, run_service_id=lane.id, phase="dryrun")
        conn.execute(
            update(models.RUN_SERVICES)
            .where(models.RUN_SERVICES.c.id == other.id)
            .values(status="down", reason="down: test")
        )
        for member in (lane, other):
            verdict = finish.judge(conn, run_service_id=member.id, phase="dryrun")
            closed = lifecycle.services.close_at_deadline(
                conn, run_service_id=member.id, verdict=verdict.values()
            )
            assert closed == (member is other)
    status, reason, scores = status_of(run_engine, lane)
    assert (status, reason) == ("passed", None) and scores is not None
    assert scores["images"] == 2
    assert status_of(run_engine, other)[:2] != ("down", "down: test")  # judged


def scorer_of(*outcomes: str) -> ServiceScorer:
    scorer = ServiceScorer()
    for outcome in outcomes:
        scorer.add(outcome=outcome, tags=[], truth=["t"], latency_ms=None)
    return scorer


@pytest.mark.parametrize(
    ("elapsed", "per_s"), [(2.0, 1.0), (0.5, 4.0), (0.0, None), (-1.0, None), (None, None)]
)
def test_a_worker_that_scored_every_item_gives_the_scores(
    run_engine: Engine,
    settings: Settings,
    data_dir: Path,
    elapsed: float | None,
    per_s: float | None,
) -> None:
    (lane,) = open_run(run_engine, settings, data_dir, 2, services=1)
    record(run_engine, lane, lambda p, item, truth: ok(truth))
    # The worker's own scorer says one timed out; the verdict follows it, not a re-read.
    with run_engine.begin() as conn:
        assert finish.finish_service(
            conn,
            run_service_id=lane.id,
            phase="dryrun",
            scorer=scorer_of("ok", "timeout"),
            elapsed=elapsed,
        )
    status, reason, scores = status_of(run_engine, lane)
    assert status == "failed"
    assert reason is not None and reason.startswith("1 of 2 images did not end ok (ok 1, ")
    assert scores is not None and scores["outcomes"]["timeout"] == 1
    assert scores["images_per_s"] == per_s


def test_a_scorer_missing_items_is_not_trusted(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    # Three services of three items each: nine items in the run, three in the lane.
    lane, _, _ = open_run(run_engine, settings, data_dir, 3, services=3)
    record(run_engine, lane, lambda p, item, truth: ok(truth))
    with run_engine.begin() as conn:
        assert finish.finish_service(
            conn, run_service_id=lane.id, phase="dryrun", scorer=scorer_of(*["timeout"] * 9)
        )
    status, _, scores = status_of(run_engine, lane)
    assert status == "passed" and scores is not None and scores["outcomes"]["ok"] == 3


def test_a_run_completes_once_when_every_service_is_final(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    lane, other = open_run(run_engine, settings, data_dir, 2)
    (busy,) = open_run(run_engine, settings, data_dir, 1, services=1)  # another run, open
    record(run_engine, lane, lambda p, item, truth: ok(truth))
    record(run_engine, other, lambda p, item, truth: failed("timeout"))
    with run_engine.begin() as conn:
        assert finish.finish_service(conn, run_service_id=lane.id, phase="dryrun")
        assert not lifecycle.complete_run(conn, run_id=lane.run_id, now=T0)
        assert finish.finish_service(conn, run_service_id=other.id, phase="dryrun")
        later = T0 + timedelta(minutes=1)
        assert lifecycle.complete_run(conn, run_id=lane.run_id, now=later)
        assert not lifecycle.complete_run(conn, run_id=lane.run_id, now=FAR_AHEAD)
    assert run_state(run_engine, lane.run_id) == "completed"
    assert run_state(run_engine, busy.run_id) == "running"
    assert status_of(run_engine, other)[:2] != ("down", "down: test")  # judged
    with run_engine.connect() as conn:
        finished_at = conn.execute(
            select(models.RUNS.c.finished_at).where(models.RUNS.c.id == lane.run_id)
        ).scalar_one()
    assert finished_at == later

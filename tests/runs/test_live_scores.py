"""Live scores in the database (SQLite and PostgreSQL): kept in the transaction that
records results, they give the full rescore's figures after any interleaving of results
and batches and when a lease was lost; leaderboard and progress read them, not work
items; a team's request reads its own row; a cancelled run shows no service ongoing."""

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, update
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.errors import OUTCOMES
from gateway.migrate import upgrade
from gateway.runs import finish, lifecycle, live_scores, models, results, service
from gateway.runs.results import LeaseLost, ResultRecord
from gateway.scoring.live import PERCENTILE_ERROR, LiveTally
from gateway.scoring.split import Split
from tests.runs.recorded import T0, Lane, open_run
from tests.test_migrations import downgrade

EXACT = ("images", "top1", "top5", "outcomes")


def assert_equals_rescore(engine: Engine, run_service_id: int, row: dict[str, Any]) -> None:
    """`row` (a leaderboard row or live figures) has the full rescore's figures: counts
    and top-k exactly, latency within the histogram's bound, coverage and µAP null."""
    with engine.connect() as conn:
        full = finish.service_scores(conn, run_service_id=run_service_id)
    for name in EXACT:
        assert row[name] == full[name], name
    assert row["coverage_at_95"] is None and row["micro_ap"] is None
    if full["images_per_s"] is None:
        assert row["images_per_s"] is None
    else:
        assert row["images_per_s"] == pytest.approx(full["images_per_s"], rel=1e-9)
    got, want = row["latency_ms"], full["latency_ms"]
    assert got["max"] == want["max"]
    for name in ("p50", "p90", "p99", "mean"):
        if want[name] is None:
            assert got[name] is None
        else:
            assert got[name] == pytest.approx(want[name], rel=PERCENTILE_ERROR + 1e-9), name


def live_figures(engine: Engine, run_service_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = live_scores.read_rows(conn, run_service_ids=[run_service_id])
    return rows[run_service_id].tally.result()


def live_figures_of(batch: list[ResultRecord]) -> dict[str, Any]:
    """The live figures the worker keeps for `batch`, recorded by `record_scored`."""
    tally = LiveTally()
    for record in batch:
        tally.add(
            outcome=record.outcome,
            tags=record.tags,
            truth=record.truth,
            latency_ms=record.latency_ms,
            finished_at=record.finished_at,
        )
    return tally.result()


def result(lane: Lane, position: int, outcome: str, rank: int, latency_ms: float) -> ResultRecord:
    """The item at `position` answered with `outcome`; an `ok` answer puts the true
    label at `rank` (0: not at all)."""
    item = lane.items[position]
    truth = lane.truth[item.image_id]
    ok = outcome == "ok"
    tags = [[f"wrong{k}", 1.0 - k / 10] for k in range(7)]
    if ok and rank:
        tags[rank - 1][0] = truth
    return ResultRecord(
        item_id=item.item_id,
        run_service_id=lane.id,
        outcome=outcome,
        attempts=1,
        latency_ms=latency_ms if ok else None,
        queue_ms=0.0,
        http_status=200 if ok else None,
        request_id=f"req-{lane.id}-{position}",
        raw=None,
        tags=tags if ok else None,
        detail=None if ok else "failed",
        attempt_log=[],
        finished_at=T0 + timedelta(milliseconds=10 * position),
        truth=[truth],
    )


answers = st.lists(
    st.tuples(
        st.sampled_from(("ok", "ok", "ok", *OUTCOMES)),
        st.integers(0, 7),
        st.floats(0.05, 5_000.0),
    ),
    min_size=12,
    max_size=12,
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    answers=answers,
    order=st.permutations(range(12)),
    cuts=st.lists(st.integers(1, 11), max_size=4),
)
def test_live_leaderboard_equals_a_full_rescore_after_any_interleaving(
    run_engine: Engine,
    settings: Settings,
    data_dir: Path,
    answers: list[tuple[str, int, float]],
    order: list[int],
    cuts: list[int],
) -> None:
    lane, other = open_run(run_engine, settings, data_dir, 12)
    # Both services' results interleaved, cut into batches (flushes) anywhere.
    mine = [result(lane, p, *answers[p]) for p in order]
    theirs = [result(other, p, "ok", 1, 3.0) for p in range(12)]
    interleaved = [r for pair in zip(mine, theirs, strict=True) for r in pair]
    bounds = sorted({0, len(interleaved), *(2 * c for c in cuts)})
    for start, end in zip(bounds, bounds[1:], strict=False):
        with run_engine.begin() as conn:
            results.record_scored(conn, worker_id="w", batch=interleaved[start:end])
        # Mid-run, after every flush: the leaderboard is the rescore of what is recorded.
        with Session(run_engine) as session:
            board = {r["service_guid"]: r for r in service.leaderboard(session, run_id=lane.run_id)}
        for row in board.values():
            assert row["provisional"] is True and row["images_total"] == 12
        assert_equals_rescore(run_engine, lane.id, live_figures(run_engine, lane.id))
    assert_equals_rescore(run_engine, other.id, live_figures(run_engine, other.id))
    with Session(run_engine) as session:
        progress = service.run_progress(session, run_id=lane.run_id)
    with run_engine.connect() as conn:
        full = finish.service_scores(conn, run_service_id=lane.id)
    first = progress.services[0]
    assert (first.done, first.total, first.outcomes) == (12, 12, full["outcomes"])


def test_a_batch_with_a_lost_lease_counts_only_what_it_records(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    lane, _ = open_run(run_engine, settings, data_dir, 6)
    batch = [result(lane, p, "ok", 1 + p % 2, 5.0 + p) for p in range(6)]
    with run_engine.begin() as conn:  # item 2's lease went to another worker
        conn.execute(
            update(models.WORK_ITEMS)
            .where(models.WORK_ITEMS.c.id == lane.items[2].item_id)
            .values(lease_owner="w2")
        )
    with pytest.raises(LeaseLost), run_engine.begin() as conn:
        results.record_scored(conn, worker_id="w", batch=batch)
    assert live_figures(run_engine, lane.id)["images"] == 0  # rolled back, nothing counted
    with run_engine.begin() as conn:
        # The same result twice (an item claimed again after its lease expired) counts once.
        assert results.record_scored_checked(conn, worker_id="w", batch=[*batch, batch[0]]) == 5
    figures = live_figures(run_engine, lane.id)
    assert figures["images"] == 5
    assert_equals_rescore(run_engine, lane.id, figures)
    with run_engine.begin() as conn:  # the batch again (its commit's answer was lost)
        assert results.record_scored_checked(conn, worker_id="w", batch=batch) == 0
    assert live_figures(run_engine, lane.id)["images"] == 5


def test_a_live_row_rolled_back_or_changed_elsewhere_is_read_as_stored(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    """This process keeps the tally it last wrote to each live row (`lifecycle.live`),
    and takes it only for a row read back as it wrote it."""
    lane, _ = open_run(run_engine, settings, data_dir, 6)
    # The last two in one bucket: the second rewrites its entry of the histogram.
    batch = [result(lane, p, "ok", 1 + p % 2, 5.0 + min(p, 4)) for p in range(6)]
    with run_engine.begin() as conn:
        results.record_scored(conn, worker_id="w", batch=batch[:2])
    with pytest.raises(RuntimeError), run_engine.begin() as conn:
        results.record_scored(conn, worker_id="w", batch=batch[2:4])
        raise RuntimeError("rolled back")
    with run_engine.begin() as conn:  # the row as stored: the first batch only
        results.record_scored(conn, worker_id="w", batch=batch[2:4])
    assert_equals_rescore(run_engine, lane.id, live_figures(run_engine, lane.id))
    # Another writer (a re-send's recount, another worker) sets the row to its tally.
    elsewhere = LiveTally()
    elsewhere.add(outcome="timeout", tags=None, truth=["x"], latency_ms=None, finished_at=T0)
    with run_engine.begin() as conn:
        lifecycle.live.replace(conn, run_service_id=lane.id, tally=elsewhere)
    for one in batch[4:]:  # the second taken from this process's tally
        with run_engine.begin() as conn:
            results.record_scored(conn, worker_id="w", batch=[one])
    for record in batch[4:]:
        elsewhere.add(
            outcome=record.outcome,
            tags=record.tags,
            truth=record.truth,
            latency_ms=record.latency_ms,
            finished_at=record.finished_at,
        )
    assert live_figures(run_engine, lane.id) == elsewhere.result()
    # The histogram's JSON, kept entry by entry, is the text `json.dumps` writes.
    with run_engine.connect() as conn:
        stored = conn.exec_driver_sql(
            f"SELECT latency_buckets FROM live_scores WHERE run_service_id = {lane.id}"
        ).scalar_one()
    want = elsewhere.columns()["latency_buckets"]
    assert stored == (json.dumps(want) if isinstance(stored, str) else want)


def test_leaderboard_and_progress_read_no_work_items_and_a_team_only_its_row(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    lane, other = open_run(run_engine, settings, data_dir, 8)
    with run_engine.begin() as conn:
        results.record_scored(
            conn,
            worker_id="w",
            batch=[result(lane, p, "ok", 2, 4.0) for p in range(8)]
            + [result(other, p, "ok", 1, 2.0) for p in range(8)],
        )
    with Session(run_engine) as session:
        own_guid = service.leaderboard(session, run_id=lane.run_id)[1]["provider_guid"]
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(run_engine, "before_cursor_execute", seen)
    try:
        with Session(run_engine) as session:
            everyone = service.leaderboard(session, run_id=lane.run_id)
            service.run_progress(session, run_id=lane.run_id)
            assert not [s for s, _ in statements if "work_items" in s]
            statements.clear()
            own = service.leaderboard(session, run_id=lane.run_id, provider_guid=own_guid)
    finally:
        event.remove(run_engine, "before_cursor_execute", seen)
    # The team behind on the board sees its own row only, first among its own.
    assert [r["top1"] for r in everyone] == [1.0, 0.0]
    assert [(r["provider_guid"], r["rank"], r["top1"]) for r in own] == [(own_guid, 1, 0.0)]
    live_reads = [p for s, p in statements if "FROM live_scores" in s]
    assert len(live_reads) == 1
    values = list(live_reads[0].values() if isinstance(live_reads[0], dict) else live_reads[0])
    assert values == [lane.id]


def test_a_cancelled_run_shows_no_service_ongoing_and_resume_brings_it_back(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    lane, other = open_run(run_engine, settings, data_dir, 4)
    with run_engine.begin() as conn:
        results.record_scored(conn, worker_id="w", batch=[result(lane, 0, "ok", 1, 4.0)])
        conn.execute(
            update(models.RUN_SERVICES)
            .where(models.RUN_SERVICES.c.id == lane.id)
            .values(status="ongoing")
        )
    with Session(run_engine) as session:
        before = [s.status for s in service.run_progress(session, run_id=lane.run_id).services]
        assert before == ["ongoing", "pending"]
        service.cancel_run(session, run_id=lane.run_id)
        progress = service.run_progress(session, run_id=lane.run_id)
        board = service.leaderboard(session, run_id=lane.run_id)
    assert [s.status for s in progress.services] == ["cancelled", "cancelled"]
    assert [(r["status"], r["provisional"]) for r in board] == [("cancelled", True)] * 2
    assert [r["images"] for r in board] == [1, 0]
    with Session(run_engine) as session:
        service.resume_run(session, run_id=lane.run_id)
        progress = service.run_progress(session, run_id=lane.run_id)
    assert [s.status for s in progress.services] == before


def test_migration_0014_gives_a_run_from_before_live_scores_its_leaderboard(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    """A run recorded the way hubs before 0007 recorded it (work items only, no live
    scores), upgraded through 0014: its progress and leaderboard are those the old read
    path (a rescore of its items) showed, up to what a provisional row never shows."""
    lane, other = open_run(run_engine, settings, data_dir, 6)
    with run_engine.begin() as conn:
        # As a hub before 0007 recorded: the results and nothing else.
        batch = [result(lane, p, "ok", 1 + p % 3, 2.0 + p) for p in range(3)]
        batch.append(result(lane, 3, "timeout", 0, 0.0))
        batch += [result(other, p, "ok", p % 2, 5.0 * (p + 1)) for p in range(6)]
        assert results.record_results(conn, worker_id="w", results=batch) == len(batch)
        scored = finish.service_scores(conn, run_service_id=other.id)
        conn.execute(
            update(models.RUN_SERVICES)
            .where(models.RUN_SERVICES.c.id == other.id)
            .values(status="passed", scores=scored)
        )
        conn.execute(models.LIVE_SCORES.delete())
    downgrade(run_engine, "0007")  # the schema of the hubs that recorded it so
    upgrade(run_engine)

    with Session(run_engine) as session:
        board = service.leaderboard(session, run_id=lane.run_id)
        progress = service.run_progress(session, run_id=lane.run_id).services
    with run_engine.connect() as conn:
        stored = live_scores.read_rows(conn, run_service_ids=[lane.id, other.id])
    ongoing = next(row for row in board if row["provisional"])
    passed = next(row for row in board if not row["provisional"])
    assert {k: passed[k] for k in scored} == scored  # the stored full rescore, as before
    assert passed["images_total"] == ongoing["images_total"] == 6
    assert_equals_rescore(run_engine, lane.id, ongoing)
    assert (ongoing["images"], ongoing["outcomes"]["ok"], ongoing["outcomes"]["timeout"]) == (
        4,
        3,
        1,
    )
    first = next(p for p in progress if p.service_guid == ongoing["service_guid"])
    assert (first.done, first.total, first.outcomes["ok"]) == (4, 6, 3)
    # The backfilled rows are what the worker would have kept: its tally, counted live.
    assert stored[lane.id].tally.result() == live_figures_of(batch[:4])
    assert stored[other.id].images_total == 6 and stored[other.id].tally.images == 6


def test_migration_0014_counts_what_the_worker_would_have_kept_of_each_part(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    """Live rows gone (whole and parts) and migrated again: the backfill's rows equal
    those the worker kept, for the whole run service and each part of a split run,
    results never sent included."""
    split = Split(7, 0.5)
    lane, _ = open_run(run_engine, settings, data_dir, 12, split=split)
    with run_engine.begin() as conn:
        batch = [result(lane, p, "ok", p % 4, 1.5 * (p + 1)) for p in range(7)]
        batch.append(result(lane, 7, "bad_format", 0, 0.0))
        # The part the worker has from the claim.
        batch = [
            dataclasses.replace(r, part=split.part_of(lane.items[p].image_id))
            for p, r in enumerate(batch)
        ]
        results.record_scored(conn, worker_id="w", batch=batch)
        results.record_unsent(
            conn, run_service_id=lane.id, outcome="missed", detail="deadline", now=T0
        )

    def kept() -> list[dict[str, Any]]:
        with run_engine.connect() as conn:
            ids = [lane.id]
            rows = [live_scores.read_rows(conn, run_service_ids=ids)[lane.id]]
            rows += [
                live_scores.read_part_rows(conn, run_service_ids=ids, part=part)[lane.id]
                for part in ("public", "private")
            ]
        return [{"total": row.images_total, **row.tally.columns()} for row in rows]

    before = kept()
    assert before[0]["images"] == 12 and before[1]["images"] + before[2]["images"] == 12
    assert 0 < before[1]["images"] < 12
    with run_engine.begin() as conn:
        conn.execute(models.LIVE_SCORE_PARTS.delete())
        conn.execute(models.LIVE_SCORES.delete())
    downgrade(run_engine, "0013")
    upgrade(run_engine)
    assert kept() == before

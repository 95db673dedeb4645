"""The leases under the engine, on SQLite and PostgreSQL: claims take exactly what was
asked in order, a result is recorded only by its lease's owner, expired leases return,
and a run completes once."""

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.db import utcnow
from gateway.runs import finish, lifecycle, models, results
from gateway.runs.engine import store
from gateway.runs.engine.surveyor import survey_runs
from gateway.runs.models import RunService, ServiceSlot, WorkItem
from gateway.runs.results import ResultRecord
from tests.runs.builders import add_dataset, add_service, item_counts, make_images, run_state
from tests.runs.conftest import start_run


def result(item_id: int) -> ResultRecord:
    return ResultRecord(
        item_id=item_id,
        run_service_id=0,
        outcome="ok",
        attempts=1,
        latency_ms=1.5,
        queue_ms=0.1,
        http_status=200,
        request_id=f"r{item_id}",
        raw="x:1",
        tags=[("x", 1.0)],
        detail=None,
        attempt_log=[],
        finished_at=utcnow(),
    )


def one_lane(engine: Engine, settings: Settings, data_dir: Path, n: int) -> tuple[int, int]:
    dataset = add_dataset(engine, data_dir, make_images(n))
    add_service(engine, ["http://127.0.0.1:9"], max_concurrency=3)
    run_id = start_run(engine, settings, dataset=dataset, phase="dryrun")
    now = utcnow()
    with engine.begin() as conn:
        lanes = survey_runs(conn, now=now, live_since=now).lanes
    return run_id, lanes[0].run_service_id


def test_claims_take_what_was_asked_in_seq_order(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    run_id, lane = one_lane(run_engine, settings, data_dir, 50)
    now = utcnow()
    later = now + timedelta(seconds=30)
    with run_engine.begin() as conn:
        got, refs = store.claim_items(
            conn, worker_id="a", wants={lane: 6}, mark_ongoing=[lane], now=now, expires=later
        )
        more, _ = store.claim_items(
            conn, worker_id="b", wants={lane: 4}, mark_ongoing=[], now=now, expires=later
        )
    assert [i.seq for i in got[lane]] == [0, 1, 2, 3, 4, 5]
    assert [i.seq for i in more[lane]] == [6, 7, 8, 9]
    assert set(refs) == {i.image_id for i in got[lane]}
    assert item_counts(run_engine, run_id) == {"leased": 10, "pending": 40}
    with Session(run_engine) as session:
        assert session.get(RunService, lane).status == "ongoing"  # type: ignore[union-attr]


def test_only_the_lease_owner_records_and_expired_leases_return(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    run_id, lane = one_lane(run_engine, settings, data_dir, 3)
    now = utcnow()
    with run_engine.begin() as conn:
        got, _ = store.claim_items(
            conn,
            worker_id="a",
            wants={lane: 3},
            mark_ongoing=[],
            now=now,
            expires=now - timedelta(seconds=1),  # already expired: "a" died
        )
    first, second, third = (i.item_id for i in got[lane])
    with run_engine.begin() as conn:
        assert results.record_results(conn, worker_id="b", results=[result(first)]) == 0
        assert results.record_results(conn, worker_id="a", results=[result(first)]) == 1
        survey_runs(conn, now=utcnow(), live_since=now)  # returns expired leases
    assert item_counts(run_engine, run_id) == {"done": 1, "pending": 2}
    with run_engine.begin() as conn:
        again, _ = store.claim_items(
            conn, worker_id="b", wants={lane: 5}, mark_ongoing=[], now=now, expires=now
        )
        assert [i.item_id for i in again[lane]] == [second, third]
        # The late answer of the dead worker is ignored; the new owner's counts, once.
        assert results.record_results(conn, worker_id="a", results=[result(second)]) == 0
        batch = [result(second), result(third), result(first)]
        assert results.record_results(conn, worker_id="b", results=batch) == 2
        assert results.record_results(conn, worker_id="b", results=[result(second)]) == 0
    with Session(run_engine) as session:
        item = session.get(WorkItem, second)
        assert item is not None and item.request_id == f"r{second}" and item.tags == [["x", 1.0]]


def test_slots_are_leased_up_to_the_bound_and_freed_on_expiry(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    _, lane = one_lane(run_engine, settings, data_dir, 2)
    now = utcnow()
    with run_engine.begin() as conn:
        a = lifecycle.slots.lease(conn, worker_id="a", wants={lane: 2}, now=now, expires=now)
        b = lifecycle.slots.lease(
            conn, worker_id="b", wants={lane: 5}, now=now, expires=now + timedelta(seconds=30)
        )
    assert len(a[lane]) == 2 and len(b[lane]) == 1
    with run_engine.begin() as conn:  # "a" let its leases lapse
        c = lifecycle.slots.lease(
            conn, worker_id="c", wants={lane: 5}, now=utcnow(), expires=utcnow()
        )
    assert sorted(c[lane]) == sorted(a[lane])
    with Session(run_engine) as session:
        owners = session.scalars(
            select(ServiceSlot.lease_owner).where(ServiceSlot.run_service_id == lane)
        ).all()
    assert sorted(o or "" for o in owners) == ["b", "c", "c"]


def test_a_run_completes_once_when_its_services_are_final(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    run_id, lane = one_lane(run_engine, settings, data_dir, 2)
    now = utcnow()
    with run_engine.begin() as conn:
        assert not finish.finish_service(conn, run_service_id=lane, phase="dryrun")
        got, _ = store.claim_items(
            conn, worker_id="a", wants={lane: 2}, mark_ongoing=[], now=now, expires=now
        )
        results.record_results(conn, worker_id="a", results=[result(i.item_id) for i in got[lane]])
        assert finish.finish_service(conn, run_service_id=lane, phase="dryrun")
        assert lifecycle.complete_run(conn, run_id=run_id, now=now)
        assert not lifecycle.complete_run(conn, run_id=run_id, now=now)
        conn.execute(update(models.RUNS).where(models.RUNS.c.id == run_id).values(state="running"))
        survey_runs(conn, now=now, live_since=now)  # nothing left open: completes it
    with Session(run_engine) as session:
        member = session.get(RunService, lane)
        assert member is not None and member.status == "passed" and member.scores is not None
        assert member.scores["images"] == 2 and member.scores["outcomes"]["ok"] == 2
    assert run_state(run_engine, run_id) == "completed"

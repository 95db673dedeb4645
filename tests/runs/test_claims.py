"""Workers, leases and results under the engine (SPEC §4: several workers share one
database; any worker can die without losing or repeating work), on SQLite and PostgreSQL,
through the claim functions themselves."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from gateway import db
from gateway.config import Settings
from gateway.db import utcnow
from gateway.runs import lifecycle, models, results
from gateway.runs.engine import store
from gateway.runs.engine.store import LanePlan
from gateway.runs.engine.surveyor import survey_runs
from gateway.runs.results import ResultRecord
from tests.runs.builders import add_dataset, add_service, item_counts, make_images, run_state
from tests.runs.conftest import start_run
from tests.runs.recorded import T0

SOON = T0 + timedelta(seconds=30)
LATER = T0 + timedelta(seconds=60)
LONG_AGO = T0 - timedelta(days=1)


def new_run(
    engine: Engine, settings: Settings, data_dir: Path, n: int, *, services: int = 2
) -> tuple[int, list[LanePlan]]:
    """A run of `n` images against `services` services, started by a survey at T0."""
    dataset = add_dataset(engine, data_dir, make_images(n))
    guids = [
        add_service(
            engine,
            [f"http://127.0.0.1:{9000 + k}/a", f"http://127.0.0.1:{9000 + k}/b"],
            max_concurrency=2 + k,
        )
        for k in range(services)
    ]
    run_id = start_run(
        engine, settings, dataset=dataset, phase="evaluation", timeout_s=7.5, service_guids=guids
    )
    with engine.begin() as conn:
        plans = [p for p in survey_runs(conn, now=T0, live_since=T0).lanes if p.run_id == run_id]
    return run_id, plans


def take(engine: Engine, worker: str, lane: int, n: int, expires: datetime = SOON) -> list[int]:
    with engine.begin() as conn:
        got, _ = store.claim_items(
            conn, worker_id=worker, wants={lane: n}, mark_ongoing=[], now=T0, expires=expires
        )
    return [item.item_id for item in got.get(lane, [])]


def leases(engine: Engine, table: Any, ids: list[int]) -> list[tuple[Any, ...]]:
    """(state or slot, owner, expiry) of the rows `ids`, in that order."""
    first = table.c.state if table is models.WORK_ITEMS else table.c.slot
    with engine.connect() as conn:
        rows = {
            row.id: (row[1], row.lease_owner, row.lease_expires_at)
            for row in conn.execute(
                select(table.c.id, first, table.c.lease_owner, table.c.lease_expires_at).where(
                    table.c.id.in_(ids)
                )
            )
        }
    return [rows[i] for i in ids]


def worker_rows(engine: Engine) -> dict[str, tuple[Any, ...]]:
    with engine.connect() as conn:
        return {
            row.id: (row.host, row.pid, row.started_at, row.heartbeat_at)
            for row in conn.execute(select(models.WORKERS))
        }


def test_ids_are_sent_in_bounded_chunks() -> None:
    assert [list(c) for c in db.chunked([1, 2, 3, 4, 5, 6, 7], 3)] == [
        [1, 2, 3],
        [4, 5, 6],
        [7],
    ]
    assert [len(c) for c in db.chunked(list(range(1001)))] == [500, 500, 1]
    assert list(db.chunked([])) == []


def test_a_worker_registers_and_forgets_the_long_silent(run_engine: Engine) -> None:
    with run_engine.begin() as conn:
        for name, hours in (("older", 3), ("old", 2), ("recent", 0)):
            seen = T0 - timedelta(hours=hours)
            store.register_worker(
                conn, worker_id=name, host="h", pid=1, now=seen, forget_before=LONG_AGO
            )
        store.register_worker(
            conn,
            worker_id="new",
            host="box",
            pid=42,
            now=LATER,
            forget_before=T0 - timedelta(hours=2),  # "old" was seen just then: kept
        )
    rows = worker_rows(run_engine)
    assert set(rows) == {"old", "recent", "new"}
    assert rows["new"] == ("box", 42, LATER, LATER)


def test_heartbeat_extends_only_this_workers_leases_in_its_lanes(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    _, (one, two) = new_run(run_engine, settings, data_dir, 4)
    *mine, recorded = take(run_engine, "a", one.run_service_id, 3)
    theirs = take(run_engine, "b", one.run_service_id, 1)
    elsewhere = take(run_engine, "a", two.run_service_id, 1)
    with run_engine.begin() as conn:
        results.record_results(conn, worker_id="a", results=[done(recorded)])
        for name in ("a", "b"):
            store.register_worker(conn, worker_id=name, host="h", pid=1, now=T0, forget_before=T0)
        slots = lifecycle.slots.lease(
            conn, worker_id="a", wants={one.run_service_id: 1}, now=T0, expires=SOON
        )[one.run_service_id]
        other_slots = lifecycle.slots.lease(
            conn, worker_id="b", wants={one.run_service_id: 1}, now=T0, expires=SOON
        )[one.run_service_id]
        store.heartbeat(
            conn, worker_id="a", run_service_ids={one.run_service_id}, now=SOON, expires=LATER
        )
    assert {name: row[3] for name, row in worker_rows(run_engine).items()} == {"a": SOON, "b": T0}
    assert leases(run_engine, models.WORK_ITEMS, mine) == [("leased", "a", LATER)] * 2
    assert leases(run_engine, models.WORK_ITEMS, [recorded]) == [("done", "a", None)]
    assert leases(run_engine, models.WORK_ITEMS, theirs + elsewhere) == [
        ("leased", "b", SOON),
        ("leased", "a", SOON),
    ]
    assert [lease[1:] for lease in leases(run_engine, models.SLOTS, slots + other_slots)] == [
        ("a", LATER),
        ("b", SOON),
    ]


def test_a_clean_stop_gives_back_this_workers_unrecorded_items_and_slots(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    run_id, (one, two) = new_run(run_engine, settings, data_dir, 4)
    *mine, recorded = take(run_engine, "a", one.run_service_id, 3)
    theirs = take(run_engine, "b", one.run_service_id, 1)
    elsewhere = take(run_engine, "a", two.run_service_id, 1)
    with run_engine.begin() as conn:
        store.register_worker(conn, worker_id="a", host="h", pid=1, now=T0, forget_before=T0)
        store.register_worker(conn, worker_id="b", host="h", pid=2, now=T0, forget_before=T0)
        results.record_results(conn, worker_id="a", results=[done(recorded)])
        slots = lifecycle.slots.lease(
            conn, worker_id="a", wants={one.run_service_id: 1}, now=T0, expires=SOON
        )[one.run_service_id]
        other_slots = lifecycle.slots.lease(
            conn, worker_id="b", wants={one.run_service_id: 1}, now=T0, expires=SOON
        )[one.run_service_id]
        store.unregister_worker(conn, worker_id="a", run_service_ids=[one.run_service_id])
    assert leases(run_engine, models.WORK_ITEMS, mine) == [("pending", None, None)] * 2
    assert leases(run_engine, models.WORK_ITEMS, theirs + elsewhere) == [
        ("leased", "b", SOON),
        ("leased", "a", SOON),
    ]
    assert [lease[1:] for lease in leases(run_engine, models.SLOTS, slots + other_slots)] == [
        (None, None),
        ("b", SOON),
    ]
    assert set(worker_rows(run_engine)) == {"b"}
    assert item_counts(run_engine, run_id) == {"pending": 5, "leased": 2, "done": 1}


def test_the_only_worker_of_a_sqlite_hub_takes_over_every_lease(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    run_id, (one, _) = new_run(run_engine, settings, data_dir, 4)
    taken = take(run_engine, "dead", one.run_service_id, 3)
    with run_engine.begin() as conn:
        for name in ("dead", "me"):
            store.register_worker(conn, worker_id=name, host="h", pid=1, now=T0, forget_before=T0)
        lifecycle.slots.lease(
            conn, worker_id="dead", wants={one.run_service_id: 2}, now=T0, expires=SOON
        )
        results.record_results(conn, worker_id="dead", results=[done(taken[0])])
        assert store.take_over(conn, worker_id="me") == 2
    assert item_counts(run_engine, run_id) == {"done": 1, "pending": 7}
    assert leases(run_engine, models.WORK_ITEMS, taken[1:]) == [("pending", None, None)] * 2
    with run_engine.connect() as conn:
        owners = conn.execute(select(models.SLOTS.c.lease_owner, models.SLOTS.c.lease_expires_at))
        assert {tuple(row) for row in owners} == {(None, None)}
    assert set(worker_rows(run_engine)) == {"me"}
    with run_engine.begin() as conn:
        assert store.take_over(conn, worker_id="me") == 0


def test_items_never_sent_go_back_to_pending_by_their_owner_only(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    _, (one, _) = new_run(run_engine, settings, data_dir, 4)
    first, second, third = take(run_engine, "a", one.run_service_id, 3)
    (theirs,) = take(run_engine, "b", one.run_service_id, 1)
    with run_engine.begin() as conn:
        results.record_results(conn, worker_id="a", results=[done(third)])
        lifecycle.items.give_back(conn, worker_id="a", item_ids=[first, third, theirs])
    assert leases(run_engine, models.WORK_ITEMS, [first, second, third, theirs]) == [
        ("pending", None, None),
        ("leased", "a", SOON),
        ("done", "a", None),
        ("leased", "b", SOON),
    ]


def done(item_id: int, **fields: Any) -> ResultRecord:
    values: dict[str, Any] = {
        "item_id": item_id,
        "run_service_id": 0,
        "outcome": "ok",
        "attempts": 2,
        "latency_ms": 12.25,
        "queue_ms": 3.5,
        "http_status": 200,
        "request_id": f"req-{item_id}",
        "raw": "cat:0.5",
        "tags": [["cat", 0.5]],
        "detail": None,
        "attempt_log": [{"n": 1, "outcome": "timeout"}, {"n": 2, "outcome": "ok"}],
        "finished_at": datetime(2026, 1, 1, 12, 0, 1, 250_000),
        **fields,
    }
    return ResultRecord(**values)


def test_survey_starts_queued_runs_and_describes_their_open_lanes(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    run_id, plans = new_run(run_engine, settings, data_dir, 3)
    with run_engine.connect() as conn:
        run = conn.execute(select(models.RUNS).where(models.RUNS.c.id == run_id)).one()
        guids = dict(
            conn.execute(
                select(models.RUN_SERVICES.c.id, models.SERVICES.c.guid).join(
                    models.SERVICES, models.SERVICES.c.id == models.RUN_SERVICES.c.service_id
                )
            ).all()
        )
    assert (run.state, run.started_at) == ("running", T0)
    assert [(p.phase, p.status, p.timeout_s, p.max_attempts) for p in plans] == [
        ("evaluation", "pending", 7.5, run.max_attempts)
    ] * 2
    assert [p.max_concurrency for p in plans] == [2, 3]
    for k, plan in enumerate(plans):
        assert plan.target.service_guid == guids[plan.run_service_id]
        assert plan.target.instances == (
            f"http://127.0.0.1:{9000 + k}/a",
            f"http://127.0.0.1:{9000 + k}/b",
        )
        assert plan.target.signing_secret == "s3cret" and plan.target.provider_guid
    # Reordered: the first service moves last, each service's first endpoint too; the run
    # is queued again (resumed) and keeps its first start time.
    with run_engine.begin() as conn:
        conn.execute(
            update(models.RUN_SERVICES)
            .where(models.RUN_SERVICES.c.id == plans[0].run_service_id)
            .values(position=9)
        )
        conn.execute(
            update(models.INSTANCES)
            .where(models.INSTANCES.c.url.like("%/a"))
            .values(position=models.INSTANCES.c.position + 7)
        )
        conn.execute(update(models.RUNS).where(models.RUNS.c.id == run_id).values(state="queued"))
        again = survey_runs(conn, now=LATER, live_since=LATER).lanes
        started = conn.execute(
            select(models.RUNS.c.state, models.RUNS.c.started_at).where(models.RUNS.c.id == run_id)
        ).one()
    assert tuple(started) == ("running", T0)
    assert [p.run_service_id for p in again] == [plans[1].run_service_id, plans[0].run_service_id]
    assert [p.target.instances[0].endswith("/b") for p in again] == [True, True]
    # A final lane is left out.
    with run_engine.begin() as conn:
        conn.execute(
            update(models.RUN_SERVICES)
            .where(models.RUN_SERVICES.c.id == plans[0].run_service_id)
            .values(status="passed")
        )
        last = survey_runs(conn, now=LATER, live_since=LATER).lanes
    assert [p.run_service_id for p in last] == [plans[1].run_service_id]


def test_survey_completes_a_running_run_with_nothing_open(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    run_id, plans = new_run(run_engine, settings, data_dir, 1)
    with run_engine.begin() as conn:
        conn.execute(
            update(models.RUN_SERVICES)
            .where(models.RUN_SERVICES.c.run_id == run_id)
            .values(status="failed")
        )
        assert survey_runs(conn, now=LATER, live_since=LATER).lanes == []
        finished = conn.execute(
            select(models.RUNS.c.state, models.RUNS.c.finished_at).where(models.RUNS.c.id == run_id)
        ).one()
    assert tuple(finished) == ("completed", LATER)


def test_survey_returns_expired_leases_and_counts_live_workers(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    _, (one, _) = new_run(run_engine, settings, data_dir, 3)
    expired = take(run_engine, "a", one.run_service_id, 1, expires=SOON - timedelta(seconds=1))
    at_edge = take(run_engine, "b", one.run_service_id, 1, expires=SOON)
    live = take(run_engine, "c", one.run_service_id, 1, expires=LATER)
    with run_engine.begin() as conn:
        assert survey_runs(conn, now=SOON, live_since=SOON).live_workers == 1  # none: still 1
        for name, seen in (("a", T0), ("b", SOON), ("c", LATER)):
            store.register_worker(conn, worker_id=name, host="h", pid=1, now=seen, forget_before=T0)
        assert survey_runs(conn, now=SOON, live_since=SOON).live_workers == 2
    assert leases(run_engine, models.WORK_ITEMS, expired + at_edge + live) == [
        ("pending", None, None),
        ("leased", "b", SOON),
        ("leased", "c", LATER),
    ]


def test_a_run_the_hub_cannot_go_on_with_fails_with_its_error(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    run_id, _ = new_run(run_engine, settings, data_dir, 1, services=1)
    bystander, _ = new_run(run_engine, settings, data_dir, 1, services=1)
    with run_engine.begin() as conn:
        lifecycle.fail_run(conn, run_id=run_id, error="image file missing", now=LATER)
        lifecycle.fail_run(conn, run_id=run_id, error="second error", now=SOON)
        row = conn.execute(
            select(models.RUNS.c.state, models.RUNS.c.error, models.RUNS.c.finished_at).where(
                models.RUNS.c.id == run_id
            )
        ).one()
    assert tuple(row) == ("failed", "image file missing", LATER)
    assert run_state(run_engine, bystander) == "running"


def test_slots_are_free_when_unowned_or_expired_before_now(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    _, (one, two) = new_run(run_engine, settings, data_dir, 1)  # 2 and 3 slots
    lane, other = one.run_service_id, two.run_service_id
    with run_engine.begin() as conn:
        a = lifecycle.slots.lease(
            conn, worker_id="a", wants={other: 0, lane: 1}, now=T0, expires=T0
        )
        b = lifecycle.slots.lease(conn, worker_id="b", wants={lane: 1}, now=T0, expires=LATER)
        assert set(a) == {lane} and set(b) == {lane}
        # The only slot not held by a live lease is a's, which expires exactly now: held.
        got = lifecycle.slots.lease(
            conn, worker_id="c", wants={lane: 5, other: 1}, now=T0, expires=LATER
        )
        assert set(got) == {other} and len(got[other]) == 1
        c = lifecycle.slots.lease(conn, worker_id="c", wants={lane: 5}, now=SOON, expires=LATER)
        kept = lifecycle.slots.lease(conn, worker_id="b", wants={other: 1}, now=T0, expires=LATER)
        lifecycle.slots.release(conn, worker_id="b", slot_ids=c[lane] + b[lane])
    assert c == a
    assert [lease[1:] for lease in leases(run_engine, models.SLOTS, kept[other])] == [("b", LATER)]
    assert [lease[1:] for lease in leases(run_engine, models.SLOTS, a[lane] + b[lane])] == [
        ("c", LATER),
        (None, None),
    ]


def test_claims_skip_known_images_and_mark_only_lanes_that_got_items(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    _, (one, two) = new_run(run_engine, settings, data_dir, 3)
    lane, other = one.run_service_id, two.run_service_id
    with run_engine.begin() as conn:
        first, refs = store.claim_items(
            conn,
            worker_id="a",
            wants={other: 0, lane: 2},
            mark_ongoing=[lane, other],
            now=T0,
            expires=SOON,
        )
        known = [item.image_id for item in first[lane]]
        second, more = store.claim_items(
            conn,
            worker_id="a",
            wants={lane: 5},
            mark_ongoing=[],
            now=T0,
            expires=SOON,
            known_images=known,
        )
        statuses = dict(
            conn.execute(select(models.RUN_SERVICES.c.id, models.RUN_SERVICES.c.status)).all()
        )
        images = {
            row.id: row
            for row in conn.execute(select(models.IMAGES).where(models.IMAGES.c.id.in_(known)))
        }
    assert set(first) == {lane} and len(second[lane]) == 1
    assert set(refs) == set(known)
    assert set(more) == {second[lane][0].image_id}
    for image_id, ref in refs.items():
        row = images[image_id]
        assert (ref.sha256, ref.content_type, ref.truth) == (row.sha256, "image/png", row.truth)
    assert statuses[lane] == "ongoing" and statuses[other] == "pending"


def test_a_recorded_result_keeps_every_field(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    _, (one, _) = new_run(run_engine, settings, data_dir, 2)
    first, second = take(run_engine, "a", one.run_service_id, 2)
    with run_engine.begin() as conn:
        assert results.record_results(conn, worker_id="a", results=[]) == 0
        written = results.record_results(
            conn,
            worker_id="a",
            results=[done(first), done(second, outcome="timeout", tags=None, attempt_log=None)],
        )
        assert written == 2
        rows = {
            row.id: row
            for row in conn.execute(
                select(models.WORK_ITEMS).where(models.WORK_ITEMS.c.id.in_([first, second]))
            )
        }
    expected = done(first)
    row = rows[first]
    for name in lifecycle.items.RESULT_FIELDS:
        assert getattr(row, name) == getattr(expected, name), name
    assert (row.state, row.lease_owner, row.lease_expires_at) == ("done", "a", None)
    assert (rows[second].outcome, rows[second].tags, rows[second].attempt_log) == (
        "timeout",
        None,
        None,
    )


def test_a_claim_marks_only_a_pending_lane_ongoing(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    _, (one, two) = new_run(run_engine, settings, data_dir, 2)
    lane, judged = one.run_service_id, two.run_service_id
    with run_engine.begin() as conn:
        conn.execute(
            update(models.RUN_SERVICES)
            .where(models.RUN_SERVICES.c.id == judged)
            .values(status="failed")
        )
        got, _ = store.claim_items(
            conn,
            worker_id="a",
            wants={lane: 1, judged: 1},
            mark_ongoing=[lane, judged],
            now=T0,
            expires=SOON,
        )
        statuses = dict(
            conn.execute(select(models.RUN_SERVICES.c.id, models.RUN_SERVICES.c.status)).all()
        )
    assert set(got) == {lane, judged}
    assert statuses == {lane: "ongoing", judged: "failed"}


def test_survey_keeps_runs_apart(run_engine: Engine, settings: Settings, data_dir: Path) -> None:
    done_run, _ = new_run(run_engine, settings, data_dir, 1)
    first, first_lanes = new_run(run_engine, settings, data_dir, 1)
    failed_run, failed_lanes = new_run(run_engine, settings, data_dir, 1)
    second, second_lanes = new_run(run_engine, settings, data_dir, 1)
    # A lease of the failed run that lapsed stays as it is: that run is not sent any more.
    stale = take(run_engine, "a", failed_lanes[0].run_service_id, 1, expires=T0)
    with run_engine.begin() as conn:
        conn.execute(
            update(models.RUN_SERVICES)
            .where(models.RUN_SERVICES.c.run_id == done_run)
            .values(status="passed")
        )
        lifecycle.fail_run(conn, run_id=failed_run, error="image file missing", now=T0)
        lanes = survey_runs(conn, now=LATER, live_since=LATER).lanes
    # Every open lane of the running runs, run by run, each run's lanes in their order.
    assert [lane.run_service_id for lane in lanes] == [
        lane.run_service_id for lane in first_lanes + second_lanes
    ]
    assert run_state(run_engine, done_run) == "completed"
    assert run_state(run_engine, failed_run) == "failed"
    assert leases(run_engine, models.WORK_ITEMS, stale) == [("leased", "a", T0)]
    assert run_state(run_engine, first) == run_state(run_engine, second) == "running"


def test_a_worker_may_take_back_only_its_own_slots_it_does_not_hold(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    """A slot leased to this worker but held by none of its consumers (the answer of its
    lease was lost) is free to it; its held slots and other workers' live slots are not."""
    _, (one,) = new_run(run_engine, settings, data_dir, 1, services=1)  # 2 slots
    lane = one.run_service_id
    with run_engine.begin() as conn:
        (mine,) = lifecycle.slots.lease(
            conn, worker_id="a", wants={lane: 1}, now=T0, expires=LATER
        )[lane]
        (theirs,) = lifecycle.slots.lease(
            conn, worker_id="b", wants={lane: 1}, now=T0, expires=LATER
        )[lane]
        held = lifecycle.slots.lease(
            conn, worker_id="a", wants={lane: 2}, now=T0, expires=LATER, held={mine}
        )
        lost = lifecycle.slots.lease(conn, worker_id="a", wants={lane: 2}, now=T0, expires=SOON)
    assert held == {}  # its one slot is held, b's is live: nothing free
    assert lost == {lane: [mine]}  # not held: taken back, with the new expiry
    assert [lease[1:] for lease in leases(run_engine, models.SLOTS, [mine, theirs])] == [
        ("a", SOON),
        ("b", LATER),
    ]


def test_a_lost_claim_of_a_lane_goes_back_to_pending(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    _, (one, two) = new_run(run_engine, settings, data_dir, 5)
    lost = take(run_engine, "a", one.run_service_id, 3)
    (theirs,) = take(run_engine, "b", one.run_service_id, 1)
    (other_lane,) = take(run_engine, "a", two.run_service_id, 1)
    with run_engine.begin() as conn:
        results.record_results(conn, worker_id="a", results=[done(lost[0])])
        given_back = lifecycle.items.give_back(
            conn, worker_id="a", run_service_ids=[one.run_service_id]
        )
    assert given_back == 2
    states = leases(run_engine, models.WORK_ITEMS, [*lost, theirs, other_lane])
    assert [s[:2] for s in states] == [
        ("done", "a"),
        ("pending", None),
        ("pending", None),
        ("leased", "b"),
        ("leased", "a"),
    ]


def test_survey_waits_for_a_runs_start_and_plans_carry_its_deadline(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    start = utcnow().replace(microsecond=0) + timedelta(hours=1)
    deadline = start + timedelta(hours=2)
    dataset = add_dataset(run_engine, data_dir, make_images(2))
    add_service(run_engine, ["http://127.0.0.1:9000/"])
    run_id = start_run(
        run_engine, settings, dataset=dataset, phase="evaluation", start_at=start, deadline=deadline
    )
    with run_engine.begin() as conn:
        before = survey_runs(conn, now=start - timedelta(seconds=1), live_since=T0).lanes
    assert before == [] and run_state(run_engine, run_id) == "queued"
    with run_engine.begin() as conn:
        at = survey_runs(conn, now=start, live_since=T0).lanes
    assert run_state(run_engine, run_id) == "running"
    assert [plan.deadline for plan in at] == [deadline]


def test_survey_names_the_paused_lanes(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    _, (one, two) = new_run(run_engine, settings, data_dir, 2)
    with run_engine.begin() as conn:
        conn.execute(
            update(models.RUN_SERVICES)
            .where(models.RUN_SERVICES.c.id == two.run_service_id)
            .values(status="down")
        )
        seen = survey_runs(conn, now=LATER, live_since=LATER)
    assert [plan.run_service_id for plan in seen.down] == [two.run_service_id]
    assert one.run_service_id in {plan.run_service_id for plan in seen.lanes}


def test_a_worker_registers_where_dial_out_recognizers_reach_it(run_engine: Engine) -> None:
    with run_engine.begin() as conn:
        store.register_worker(
            conn,
            worker_id="w",
            host="h",
            pid=1,
            now=T0,
            forget_before=LONG_AGO,
            public_url="https://hub.example.org/workers/a",
        )
        url = conn.execute(select(models.WORKERS.c.public_url)).scalar_one()
    assert url == "https://hub.example.org/workers/a"


def test_unsent_items_of_a_lane_are_recorded_with_the_outcome_given(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    """What the breaker's give-up (`unreachable`) and a deadline (`missed`) record."""
    _, (one, two) = new_run(run_engine, settings, data_dir, 4)
    answered, leased = take(run_engine, "a", one.run_service_id, 2)
    with run_engine.begin() as conn:
        results.record_results(conn, worker_id="a", results=[done(answered)])
        count = results.record_unsent(
            conn, run_service_id=one.run_service_id, outcome="missed", detail="too late", now=LATER
        )
        rows = conn.execute(
            select(
                models.WORK_ITEMS.c.id,
                models.WORK_ITEMS.c.run_service_id,
                models.WORK_ITEMS.c.state,
                models.WORK_ITEMS.c.outcome,
                models.WORK_ITEMS.c.attempts,
                models.WORK_ITEMS.c.detail,
                models.WORK_ITEMS.c.lease_owner,
                models.WORK_ITEMS.c.lease_expires_at,
                models.WORK_ITEMS.c.finished_at,
            )
        ).all()
    assert count == 3  # one leased, two pending; the answered one stays as it was
    mine = {row.id: row for row in rows if row.run_service_id == one.run_service_id}
    assert mine[answered].outcome == "ok" and mine[answered].attempts == 2
    unsent = [row for row in mine.values() if row.id != answered]
    assert leased in {row.id for row in unsent}
    assert {tuple(row[2:]) for row in unsent} == {
        ("done", "missed", 0, "too late", None, None, LATER)
    }
    assert all(row.state == "pending" for row in rows if row.run_service_id == two.run_service_id)

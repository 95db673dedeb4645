"""Every change of a run's state (`Run.state`, `RunState`), in one place.

    create_run (service.py)     -> queued
    start_due_runs              queued -> running, once its `start_at` has come
    complete_run                running -> completed, once every service is final
    complete_emptied_runs       running -> completed, for runs with nothing left open
    stop_due_runs               queued|running -> completed at its deadline
    fail_run                    queued|running -> failed (the hub cannot go on)
    cancel                      queued|running -> cancelled (the organizer)
    resume                      cancelled|failed -> running (queued if never started)
    reopen_run                  completed -> running, for items the organizer re-sends
                                (`resend.resend_items`, in its transaction)
    start_stored                queued -> running (its one service pending -> ongoing),
                                a run the hub scores from a file itself, at once
    complete_stored             running -> completed, a run the hub scored from a file
                                (gateway/challenges/files.py)

The worker's changes take a `Connection` inside its transaction and are guarded by the
state they leave, so among several workers one makes each change, once; the organizer's
change the `Run` of the request's session (`service.cancel_run`, `resume_run` commit).
This module imports only the tables: the worker imports it.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, exists, func, or_, update

from gateway.errors import Conflict
from gateway.runs.models import (
    ACTIVE_RUN_STATES,
    FINAL_STATUSES,
    RUN_SERVICES,
    RUNS,
    STOPPED_RUN_STATES,
    Run,
    RunService,
    RunState,
    ServiceStatus,
)


def _nothing_open(run_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    """No service of the run is left to send or to judge."""
    return ~exists().where(
        RUN_SERVICES.c.run_id == run_id, RUN_SERVICES.c.status.not_in(FINAL_STATUSES)
    )


def start_due_runs(conn: Connection, *, now: datetime) -> None:
    """Queued runs whose `start_at` has come (or that have none) start running."""
    conn.execute(
        update(RUNS)
        .where(
            RUNS.c.state == RunState.QUEUED,
            or_(RUNS.c.start_at.is_(None), RUNS.c.start_at <= now),
        )
        .values(state=RunState.RUNNING, started_at=func.coalesce(RUNS.c.started_at, now))
    )


def complete_emptied_runs(conn: Connection, *, now: datetime) -> None:
    """Running runs with every service final complete: a run resumed with nothing left,
    or whose worker died between closing its last service and the run."""
    conn.execute(
        update(RUNS)
        .where(RUNS.c.state == RunState.RUNNING, _nothing_open(RUNS.c.id))
        .values(state=RunState.COMPLETED, finished_at=now)
    )


def complete_run(conn: Connection, *, run_id: int, now: datetime) -> bool:
    """Mark a running run completed once all its services are final; True if this call did."""
    result = conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id, RUNS.c.state == RunState.RUNNING, _nothing_open(run_id))
        .values(state=RunState.COMPLETED, finished_at=now)
    )
    return bool(result.rowcount)


def stop_due_runs(conn: Connection, *, now: datetime) -> Sequence[Row[Any]]:
    """Complete every queued or running run whose deadline is past, `stopped_at_deadline`
    set; returns their id, phase and deadline (their unanswered items are the caller's:
    gateway.runs.engine.deadline)."""
    return conn.execute(
        update(RUNS)
        .where(
            RUNS.c.state.in_(ACTIVE_RUN_STATES),
            RUNS.c.deadline.is_not(None),
            RUNS.c.deadline <= now,
        )
        .values(
            state=RunState.COMPLETED,
            stopped_at_deadline=True,
            finished_at=now,
        )
        .returning(RUNS.c.id, RUNS.c.phase, RUNS.c.deadline)
    ).all()


def fail_run(conn: Connection, *, run_id: int, error: str, now: datetime) -> None:
    """Stop a run the hub itself cannot go on with (e.g. an image file is missing)."""
    conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id, RUNS.c.state.in_(ACTIVE_RUN_STATES))
        .values(state=RunState.FAILED, error=error, finished_at=now)
    )


def cancel(run: Run, *, now: datetime) -> None:
    """A queued or running run is cancelled (the caller commits): workers send nothing new
    for it, requests in flight finish and are recorded, unsent items go back to pending.

    Raises Conflict for a run that is not queued or running.
    """
    if run.state not in ACTIVE_RUN_STATES:
        raise Conflict(
            f"run {run.id} is {run.state}; only a queued or running run can be cancelled"
        )
    run.state = RunState.CANCELLED
    run.finished_at = now


def resume(run: Run) -> None:
    """A cancelled or failed run goes on where it stopped (the caller commits): running
    again, or queued if it never started.

    Raises Conflict for a run that is queued, running or completed.
    """
    if run.state not in STOPPED_RUN_STATES:
        raise Conflict(
            f"run {run.id} is {run.state}; only a cancelled or failed run can be resumed"
        )
    run.state = RunState.RUNNING if run.started_at is not None else RunState.QUEUED
    run.error = None
    run.finished_at = None


def start_stored(run: Run, member: RunService, *, now: datetime) -> None:
    """A new run the hub scores itself (an offline submission's prediction file) starts at
    once, its one service ongoing (the caller flushes, then writes its results).

    Raises Conflict for a run that is not queued or a service that is not pending.
    """
    if run.state != RunState.QUEUED or member.status != ServiceStatus.PENDING:
        raise Conflict(
            f"run {run.id} is {run.state} and its service {member.status}; "
            "only a new run starts to be scored from a file"
        )
    run.state = RunState.RUNNING
    run.started_at = now
    member.status = ServiceStatus.ONGOING


def complete_stored(run: Run, *, now: datetime) -> None:
    """A running run whose every result the hub stored itself (an offline submission's
    prediction file) completes (the caller commits).

    Raises Conflict for a run that is not running.
    """
    if run.state != RunState.RUNNING:
        raise Conflict(f"run {run.id} is {run.state}; only a running run can complete")
    run.state = RunState.COMPLETED
    run.finished_at = now


def reopen_run(conn: Connection, *, run_id: int, now: datetime) -> bool:
    """A completed run runs again for the items the organizer re-sends; True if this call
    reopened it. A deadline already past is lifted (the organizer re-sends after it on
    purpose: it would record them `missed` again at once); a deadline still ahead holds."""
    reopened = conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id, RUNS.c.state == RunState.COMPLETED)
        .values(state=RunState.RUNNING, finished_at=None)
    ).rowcount
    conn.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id, RUNS.c.deadline.is_not(None), RUNS.c.deadline <= now)
        .values(deadline=None, stopped_at_deadline=False)
    )
    return bool(reopened)

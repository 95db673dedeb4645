"""The end of a run's evaluation window (SPEC §3): at its deadline a run stops.

Every item not recorded by then (pending, or leased and in flight) is recorded with
outcome `missed` without another request, each open or paused service is scored over what
it answered and judged, and the run completes with `stopped_at_deadline` set. A result
arriving later is refused by the lease check of `results.record_results`.

Like `engine.store`, the function takes a `Connection` inside a transaction; the run's
conditional update (`lifecycle.stop_due_runs`) takes its row lock, so among several
workers one closes it, once.
"""

from datetime import datetime

from sqlalchemy import Connection, select

from gateway.errors import Outcome
from gateway.runs import lifecycle
from gateway.runs.finish import judge
from gateway.runs.lifecycle.live import LiveDeltas
from gateway.runs.models import FINAL_STATUSES, RUN_SERVICES
from gateway.runs.results import record_unsent


def close_due_runs(conn: Connection, *, now: datetime) -> list[int]:
    """Stop every queued or running run whose deadline is past; returns their ids."""
    due = lifecycle.stop_due_runs(conn, now=now)
    # Counted in the live scores once every due run's items are recorded (see
    # `record_unsent`: no lock order in a circle with a worker's batch).
    deltas = LiveDeltas()
    judged = [
        (
            run.phase,
            _miss_unanswered(conn, run_id=run.id, deadline=run.deadline, now=now, deltas=deltas),
        )
        for run in due
    ]
    lifecycle.live.merge(conn, deltas=deltas)
    for phase, run_service_ids in judged:
        for run_service_id in run_service_ids:
            verdict = judge(conn, run_service_id=run_service_id, phase=phase)
            lifecycle.services.close_at_deadline(
                conn, run_service_id=run_service_id, verdict=verdict.values()
            )
    return sorted(run.id for run in due)


def _miss_unanswered(
    conn: Connection,
    *,
    run_id: int,
    deadline: datetime,
    now: datetime,
    deltas: LiveDeltas,
) -> list[int]:
    """Record the run's unanswered items `missed`; returns its services still open."""
    detail = f"not answered by the run's deadline ({deadline:%Y-%m-%dT%H:%M:%SZ})"
    open_services = list(
        conn.execute(
            select(RUN_SERVICES.c.id).where(
                RUN_SERVICES.c.run_id == run_id, RUN_SERVICES.c.status.not_in(FINAL_STATUSES)
            )
        ).scalars()
    )
    for run_service_id in open_services:
        record_unsent(
            conn,
            run_service_id=run_service_id,
            outcome=Outcome.MISSED.value,
            detail=detail,
            now=now,
            deltas=deltas,
        )
    return open_services

"""Every change of a run service's status (`RunService.status`, `ServiceStatus`).

    start            pending -> ongoing, once a worker claimed some of its items
    mark_down        pending|ongoing -> down (the breaker trips)
    mark_up          down -> ongoing (its probe was answered)
    hold_down        down -> down, taking the row lock (one worker gives up, once)
    fail_down        down -> failed, scored (down past the give-up time)
    close            pending|ongoing -> passed|failed, unless re-sent meanwhile
    close_at_deadline  any but passed|failed -> the deadline's verdict
    reopen           passed|failed -> ongoing, for items the organizer re-sends
    count_resent     `resent` raised: `close` then leaves the service open

Each takes a `Connection` inside the caller's transaction and is guarded by the status it
leaves, so among several workers one makes each change, once.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, update

from gateway.runs.models import FINAL_STATUSES, OPEN_STATUSES, RUN_SERVICES, ServiceStatus


def start(conn: Connection, *, run_service_ids: Iterable[int]) -> None:
    """Pending run services among these become `ongoing`."""
    ids = sorted(run_service_ids)
    if ids:
        conn.execute(
            update(RUN_SERVICES)
            .where(RUN_SERVICES.c.id.in_(ids), RUN_SERVICES.c.status == ServiceStatus.PENDING)
            .values(status=ServiceStatus.ONGOING)
        )


def mark_down(conn: Connection, *, run_service_id: int, reason: str) -> bool:
    """Pause an open run service; False if it was not open (already down, or final)."""
    result = conn.execute(
        update(RUN_SERVICES)
        .where(RUN_SERVICES.c.id == run_service_id, RUN_SERVICES.c.status.in_(OPEN_STATUSES))
        .values(status=ServiceStatus.DOWN, reason=reason)
    )
    return bool(result.rowcount)


def mark_up(conn: Connection, *, run_service_id: int) -> bool:
    """A down run service is `ongoing` again; False if it was not down."""
    result = conn.execute(
        update(RUN_SERVICES)
        .where(RUN_SERVICES.c.id == run_service_id, RUN_SERVICES.c.status == ServiceStatus.DOWN)
        .values(status=ServiceStatus.ONGOING, reason=None)
    )
    return bool(result.rowcount)


def hold_down(conn: Connection, *, run_service_id: int) -> bool:
    """Lock a down run service's row for the rest of the transaction; False if it is not
    down (any more)."""
    result = conn.execute(
        update(RUN_SERVICES)
        .where(RUN_SERVICES.c.id == run_service_id, RUN_SERVICES.c.status == ServiceStatus.DOWN)
        .values(status=ServiceStatus.DOWN)  # takes the row lock: one worker gives up, once
    )
    return bool(result.rowcount)


def fail_down(
    conn: Connection, *, run_service_id: int, reason: str, scores: dict[str, Any] | None
) -> None:
    """A down run service fails with its scores (call `hold_down` first)."""
    conn.execute(
        update(RUN_SERVICES)
        .where(RUN_SERVICES.c.id == run_service_id, RUN_SERVICES.c.status == ServiceStatus.DOWN)
        .values(status=ServiceStatus.FAILED, reason=reason, scores=scores)
    )


def close(
    conn: Connection, *, run_service_id: int, verdict: Mapping[str, Any], resent: int
) -> bool:
    """An open run service takes its verdict (`finish.Verdict.values()`) unless it was
    re-sent since `resent` was read; True if this call closed it."""
    result = conn.execute(
        update(RUN_SERVICES)
        .where(
            RUN_SERVICES.c.id == run_service_id,
            RUN_SERVICES.c.status.in_(OPEN_STATUSES),
            RUN_SERVICES.c.resent == resent,
        )
        .values(verdict)
    )
    return bool(result.rowcount)


def close_at_deadline(conn: Connection, *, run_service_id: int, verdict: Mapping[str, Any]) -> bool:
    """A run service not yet final (open, or down) takes its verdict at the run's
    deadline; True if this call closed it."""
    result = conn.execute(
        update(RUN_SERVICES)
        .where(
            RUN_SERVICES.c.id == run_service_id,
            RUN_SERVICES.c.status.not_in(FINAL_STATUSES),
        )
        .values(verdict)
    )
    return bool(result.rowcount)


def reopen(conn: Connection, *, run_service_id: int) -> bool:
    """A passed or failed run service is open again (`ongoing`, its stored scores, each
    part's of a split run, and its reason dropped: the leaderboard shows its live scores
    until it is final again); True if this call reopened it. An open or paused (`down`)
    one is left as it is."""
    result = conn.execute(
        update(RUN_SERVICES)
        .where(RUN_SERVICES.c.id == run_service_id, RUN_SERVICES.c.status.in_(FINAL_STATUSES))
        .values(status=ServiceStatus.ONGOING, reason=None, scores=None, part_scores=None)
    )
    return bool(result.rowcount)


def count_resent(conn: Connection, *, run_service_id: int, images: int) -> None:
    """Count `images` re-sent: a `close` that read the count before does not close it."""
    conn.execute(
        update(RUN_SERVICES)
        .where(RUN_SERVICES.c.id == run_service_id)
        .values(resent=RUN_SERVICES.c.resent + images)
    )

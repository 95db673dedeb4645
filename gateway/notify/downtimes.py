"""The intervals a run service was `down`, recorded where the breaker changes its status
(`gateway.runs.engine.breaker`, in its transaction): the notifier tells them, the
timeline draws them (`gateway.notify.timeline`). The engine imports this module: it
imports no web framework.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from gateway.db import chunked, utcnow
from gateway.notify.models import DOWNTIMES


@dataclass(frozen=True, slots=True)
class Downtime:
    down_at: datetime
    up_at: datetime | None  # None: still down, or given up on
    reason: str | None


def record_down(conn: Connection, *, run_service_id: int, reason: str) -> None:
    """The breaker paused the run service just now."""
    conn.execute(
        insert(DOWNTIMES).values(run_service_id=run_service_id, down_at=utcnow(), reason=reason)
    )


def record_up(conn: Connection, *, run_service_id: int) -> None:
    """The run service answered its probe just now: its open interval ends."""
    conn.execute(
        update(DOWNTIMES)
        .where(DOWNTIMES.c.run_service_id == run_service_id, DOWNTIMES.c.up_at.is_(None))
        .values(up_at=utcnow())
    )


def downtimes(conn: Connection, *, run_service_ids: Iterable[int]) -> dict[int, list[Downtime]]:
    """Run service id -> its down intervals, in time order."""
    found: dict[int, list[Downtime]] = defaultdict(list)
    for ids in chunked(sorted(set(run_service_ids))):
        rows = conn.execute(
            select(DOWNTIMES)
            .where(DOWNTIMES.c.run_service_id.in_(ids))
            .order_by(DOWNTIMES.c.down_at, DOWNTIMES.c.id)
        )
        for row in rows:
            found[row.run_service_id].append(Downtime(row.down_at, row.up_at, row.reason))
    return found

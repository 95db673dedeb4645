"""Every change of a service slot's lease (`slots` rows: who sends on it, until when).

    create                  (new) -> free, each run service's slots
    lease / lease_probes    free or expired -> leased by a worker
    extend                  a worker's leases last longer (its heartbeat)
    release / release_owned leased by this worker -> free
    free_all                every lease -> free (the one worker of a SQLite database)

A slot is free when it has no owner or its lease has expired; every change is guarded so.
"""

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, insert, or_, select, update

from gateway.db import chunked
from gateway.runs.models import SLOTS

# The slot whose lease makes a worker the prober of a down service.
PROBE_SLOT = 0


def create(conn: Connection, *, slots_of: dict[int, int]) -> None:
    """The free slots of new run services: `slots_of` maps each to how many it has."""
    conn.execute(
        insert(SLOTS),
        [{"run_service_id": rs, "slot": k} for rs, n in slots_of.items() for k in range(n)],
    )


def lease(
    conn: Connection,
    *,
    worker_id: str,
    wants: dict[int, int],
    now: datetime,
    expires: datetime,
    held: Collection[int] = (),
) -> dict[int, list[int]]:
    """Lease up to `wants[run_service_id]` free slots of each run service; returns the
    slot ids leased per run service.

    A slot this worker leased but does not hold (`held`: every slot it has a consumer
    for or has yet to release) counts as free: a lease whose commit went through while
    its answer was lost with the connection, which the heartbeat would keep for ever.
    """
    leased: dict[int, list[int]] = {}
    free_now = or_(
        SLOTS.c.lease_owner.is_(None),
        SLOTS.c.lease_expires_at < now,
        and_(SLOTS.c.lease_owner == worker_id, SLOTS.c.id.not_in(sorted(held))),
    )
    for run_service_id, count in wants.items():
        if count <= 0:
            continue
        free = (
            select(SLOTS.c.id)
            .where(SLOTS.c.run_service_id == run_service_id, free_now)
            .order_by(SLOTS.c.slot)
            .limit(count)
            .with_for_update(skip_locked=True)
        )
        ids = list(conn.execute(free).scalars())
        if not ids:
            continue
        got = conn.execute(
            update(SLOTS)
            .where(SLOTS.c.id.in_(ids), free_now)
            .values(lease_owner=worker_id, lease_expires_at=expires)
            .returning(SLOTS.c.id)
        )
        leased[run_service_id] = list(got.scalars())
    return leased


def lease_probes(
    conn: Connection,
    *,
    worker_id: str,
    run_service_ids: Iterable[int],
    now: datetime,
    expires: datetime,
) -> dict[int, int]:
    """Take the probe lease (slot 0) of each down run service whose slot 0 is free or
    expired; returns run service id -> slot id for the ones this worker now probes."""
    leased: dict[int, int] = {}
    for ids in chunked(sorted(run_service_ids)):
        rows = conn.execute(
            update(SLOTS)
            .where(
                SLOTS.c.run_service_id.in_(ids),
                SLOTS.c.slot == PROBE_SLOT,
                or_(SLOTS.c.lease_owner.is_(None), SLOTS.c.lease_expires_at < now),
            )
            .values(lease_owner=worker_id, lease_expires_at=expires)
            .returning(SLOTS.c.run_service_id, SLOTS.c.id)
        )
        leased.update({int(rs): int(slot_id) for rs, slot_id in rows})
    return leased


def extend(conn: Connection, *, worker_id: str, expires: datetime) -> None:
    """Every slot lease of this worker lasts to `expires`."""
    conn.execute(
        update(SLOTS).where(SLOTS.c.lease_owner == worker_id).values(lease_expires_at=expires)
    )


def release(conn: Connection, *, worker_id: str, slot_ids: Sequence[int]) -> None:
    """These slots, where this worker leased them, are free."""
    for ids in chunked(slot_ids):
        conn.execute(
            update(SLOTS)
            .where(SLOTS.c.id.in_(ids), SLOTS.c.lease_owner == worker_id)
            .values(lease_owner=None, lease_expires_at=None)
        )


def release_owned(conn: Connection, *, worker_id: str) -> None:
    """Every slot this worker leased is free."""
    conn.execute(
        update(SLOTS)
        .where(SLOTS.c.lease_owner == worker_id)
        .values(lease_owner=None, lease_expires_at=None)
    )


def free_all(conn: Connection) -> None:
    """Every leased slot is free, whoever leased it."""
    conn.execute(
        update(SLOTS)
        .where(SLOTS.c.lease_owner.is_not(None))
        .values(lease_owner=None, lease_expires_at=None)
    )

"""The worker's side of the database: its row, the survey of open runs, slot leases and
work-item claims (its results: `runs.results`).

Every function runs named statements, is synchronous, short and takes a `Connection`
inside a transaction (`engine.begin()`); the worker runs them off the event loop
(`engine.threads`). Rows are chosen with
`SELECT ... FOR UPDATE SKIP LOCKED` (ignored on SQLite, where one worker holds the
database's worker lock), and every change is guarded by its condition, so several
workers can share one PostgreSQL database without ever taking the same row:

- a service slot is free when it has no owner or its lease has expired;
- a work item is claimed from `pending`; one whose lease expired goes back to `pending`;
- a result is written only `WHERE state = 'leased' AND lease_owner = <this worker>`
  (`runs.results`), so each item is recorded exactly once even if its lease was
  taken over.

The statements that change a row's state (or a slot's lease) are `gateway.runs.lifecycle`'s;
this module puts them together for each step of the worker.
"""

import operator
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import (
    Connection,
    delete,
    func,
    select,
    update,
)

from gateway.db import chunked, utcnow
from gateway.dispatch.answers import Target
from gateway.dispatch.protocols import adapter_for
from gateway.runs import lifecycle
from gateway.runs.lifecycle import driver
from gateway.runs.models import (
    INSTANCES,
    OPEN_STATUSES,
    PROVIDERS,
    RUN_SERVICES,
    RUNS,
    SERVICES,
    WORKERS,
    Phase,
    RunState,
    ServiceStatus,
)
from gateway.scoring.split import Split


@dataclass(frozen=True, slots=True)
class LanePlan:
    """A run service still open in an active run: what a worker needs to send for it."""

    run_service_id: int
    run_id: int
    phase: Phase
    status: ServiceStatus
    max_concurrency: int
    timeout_s: float
    max_attempts: int
    target: Target
    # The run's deadline (naive UTC; `engine.deadline`): in flight then is abandoned.
    deadline: datetime | None = None
    # A split run's public/private split: each result is counted in its part too.
    split: Split | None = None


@dataclass(frozen=True, slots=True)
class Survey:
    lanes: list[LanePlan]
    live_workers: int
    down: list[LanePlan]  # run services paused by the breaker, to be probed


# Named tuples, not dataclasses: claims come back from the recording process pickled, and
# a slotted dataclass is rebuilt by a Python `__setstate__` (eight times the cost, per item).
class ClaimedItem(NamedTuple):
    item_id: int
    image_id: int
    seq: int

    def __reduce__(self) -> tuple[type["ClaimedItem"], tuple[int, int, int]]:
        # Pickled as a call with its fields (a claim's reply from the recording process):
        # a third less to pickle than a named tuple's own reduce (`copyreg.__newobj__`).
        return ClaimedItem, (self.item_id, self.image_id, self.seq)


class ImageRef(NamedTuple):
    image_id: int
    sha256: str
    content_type: str
    truth: list[str]

    def __reduce__(self) -> tuple[type["ImageRef"], tuple[int, str, str, list[str]]]:
        return ImageRef, (self.image_id, self.sha256, self.content_type, self.truth)


def lease_window(lease_s: float) -> tuple[datetime, datetime]:
    """Now, and when a lease taken now expires."""
    now = utcnow()
    return now, now + timedelta(seconds=lease_s)


# Workers


def register_worker(
    conn: Connection,
    *,
    worker_id: str,
    host: str,
    pid: int,
    now: datetime,
    forget_before: datetime,
    public_url: str | None = None,
) -> None:
    """Add this worker's row and drop the rows of workers silent since `forget_before`."""
    conn.execute(delete(WORKERS).where(WORKERS.c.heartbeat_at < forget_before))
    conn.execute(
        WORKERS.insert().values(
            id=worker_id,
            host=host,
            pid=pid,
            started_at=now,
            heartbeat_at=now,
            public_url=public_url,
        )
    )


def take_over(conn: Connection, *, worker_id: str) -> int:
    """Release every lease of every other worker; for the one worker of a SQLite database,
    which holds its lock, so whoever held those leases is dead. Returns the items freed."""
    freed = lifecycle.items.free_all(conn)
    lifecycle.slots.free_all(conn)
    conn.execute(delete(WORKERS).where(WORKERS.c.id != worker_id))
    return freed


def heartbeat(
    conn: Connection,
    *,
    worker_id: str,
    run_service_ids: Iterable[int],
    now: datetime,
    expires: datetime,
) -> None:
    """Show this worker alive and extend all its leases to `expires`."""
    conn.execute(update(WORKERS).where(WORKERS.c.id == worker_id).values(heartbeat_at=now))
    lifecycle.items.extend(
        conn, worker_id=worker_id, run_service_ids=run_service_ids, expires=expires
    )
    lifecycle.slots.extend(conn, worker_id=worker_id, expires=expires)


def unregister_worker(conn: Connection, *, worker_id: str, run_service_ids: Iterable[int]) -> None:
    """A clean stop: every item this worker leased and did not record goes back to
    `pending`, its slots are freed and its row removed."""
    lifecycle.items.give_back(conn, worker_id=worker_id, run_service_ids=run_service_ids)
    lifecycle.slots.release_owned(conn, worker_id=worker_id)
    conn.execute(delete(WORKERS).where(WORKERS.c.id == worker_id))


# Runs


def survey(conn: Connection, *, now: datetime, live_since: datetime) -> Survey:
    """Every open (and every down) run service of the running runs, with the items whose
    lease expired (their worker died) put back to `pending`. The runs due to start or to
    complete are moved first by the surveyor (`surveyor.survey_runs`)."""
    rows = conn.execute(
        select(
            RUN_SERVICES.c.id,
            RUN_SERVICES.c.run_id,
            RUN_SERVICES.c.status,
            RUN_SERVICES.c.max_concurrency,
            RUN_SERVICES.c.service_id,
            RUNS.c.phase,
            RUNS.c.timeout_s,
            RUNS.c.max_attempts,
            RUNS.c.deadline,
            RUNS.c.split_seed,
            RUNS.c.public_fraction,
            SERVICES.c.guid,
            SERVICES.c.signing_secret,
            SERVICES.c.protocol,
            SERVICES.c.protocol_options,
            PROVIDERS.c.guid.label("provider_guid"),
        )
        .join(RUNS, RUNS.c.id == RUN_SERVICES.c.run_id)
        .join(SERVICES, SERVICES.c.id == RUN_SERVICES.c.service_id)
        .join(PROVIDERS, PROVIDERS.c.id == SERVICES.c.provider_id)
        .where(
            RUNS.c.state == RunState.RUNNING,
            RUN_SERVICES.c.status.in_(OPEN_STATUSES | {ServiceStatus.DOWN}),
        )
        .order_by(RUN_SERVICES.c.run_id, RUN_SERVICES.c.position)
    ).all()
    endpoints: dict[int, list[str]] = defaultdict(list)
    service_ids = sorted({row.service_id for row in rows})
    for ids in chunked(service_ids):
        for service_id, url in conn.execute(
            select(INSTANCES.c.service_id, INSTANCES.c.url)
            .where(INSTANCES.c.service_id.in_(ids))
            .order_by(INSTANCES.c.service_id, INSTANCES.c.position)
        ):
            endpoints[service_id].append(url)
    plans = [
        LanePlan(
            run_service_id=row.id,
            run_id=row.run_id,
            phase=Phase(row.phase),
            status=ServiceStatus(row.status),
            max_concurrency=row.max_concurrency,
            timeout_s=row.timeout_s,
            max_attempts=row.max_attempts,
            deadline=row.deadline,
            split=Split.of(row.split_seed, row.public_fraction),
            target=Target(
                service_guid=row.guid,
                provider_guid=row.provider_guid,
                instances=tuple(endpoints[row.service_id]),
                signing_secret=row.signing_secret,
                adapter=adapter_for(row.protocol, row.protocol_options),
            ),
        )
        for row in rows
    ]
    lifecycle.items.expire(conn, run_service_ids=[p.run_service_id for p in plans], now=now)
    live = conn.execute(
        select(func.count()).select_from(WORKERS).where(WORKERS.c.heartbeat_at >= live_since)
    ).scalar_one()
    return Survey(
        lanes=[plan for plan in plans if plan.status != ServiceStatus.DOWN],
        live_workers=max(1, int(live)),
        down=[plan for plan in plans if plan.status == ServiceStatus.DOWN],
    )


def stopped_at_deadline(conn: Connection, *, run_ids: Sequence[int]) -> set[int]:
    """Those of `run_ids` that were stopped at their deadline."""
    stopped: set[int] = set()
    for ids in chunked(run_ids):
        stopped.update(
            conn.execute(
                select(RUNS.c.id).where(RUNS.c.id.in_(ids), RUNS.c.stopped_at_deadline)
            ).scalars()
        )
    return stopped


# Work items


def claim_items(
    conn: Connection,
    *,
    worker_id: str,
    wants: dict[int, int],
    mark_ongoing: Iterable[int],
    now: datetime,
    expires: datetime,
    known_images: Collection[int] = (),
) -> tuple[dict[int, list[ClaimedItem]], dict[int, ImageRef]]:
    """Lease the next `wants[run_service_id]` pending items of each run service, in `seq`
    order; returns them per run service, with the file references of their images not in
    `known_images`. Run services in `mark_ongoing` that got items become `ongoing`."""
    claimed = {
        # By position: a row's attributes are looked up by name, ten times slower.
        run_service_id: [ClaimedItem(row[0], row[1], row[2]) for row in sorted(rows, key=_SEQ)]
        for run_service_id, rows in lifecycle.items.claim(
            conn, worker_id=worker_id, wants=wants, expires=expires
        ).items()
    }
    lifecycle.services.start(conn, run_service_ids=[rs for rs in mark_ongoing if rs in claimed])
    unknown = {i.image_id for items in claimed.values() for i in items} - set(known_images)
    return claimed, image_refs(conn, image_ids=sorted(unknown))


# A claimed row is (id, image_id, seq), `ClaimedItem`'s fields.
_SEQ = operator.itemgetter(2)
# Straight through the driver (`lifecycle.driver`): a worker asks for the files of each
# claim's new images.
_IMAGE_REFS = "SELECT id, sha256, content_type, truth FROM dataset_images WHERE id IN ({})"


def image_refs(conn: Connection, *, image_ids: Sequence[int]) -> dict[int, ImageRef]:
    refs: dict[int, ImageRef] = {}
    marker = driver.placeholder(conn)
    for ids in chunked(image_ids):
        sql = _IMAGE_REFS.format(", ".join([marker] * len(ids)))
        for image_id, sha256, content_type, stored in conn.exec_driver_sql(sql, tuple(ids)):
            truth = driver.json_value(stored)
            refs[image_id] = ImageRef(image_id, sha256, content_type, list(truth or ()))
    return refs

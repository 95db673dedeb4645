"""Every change of a work item's state (`WorkItem.state`, `ItemState`).

    insert_pending      (new) -> pending, every item of a new run
    insert_recorded     (new) -> done, items whose results the hub already has (a file)
    claim               pending -> leased to a worker, in `seq` order
    extend              a worker's leases last longer (its heartbeat)
    record_rows         leased to this worker -> done, with its result (record_results:
                        the same of `ResultRecord`s)
    mark_unsent         pending|leased -> done without being sent (`unreachable`, `missed`)
    give_back           leased to this worker -> pending
    expire              leased past its lease -> pending (its worker died)
    free_all            leased -> pending, whoever leased it
    reopen              done -> pending, its result cleared (the organizer re-sends it)

Each takes a `Connection` inside the caller's transaction and is guarded by the state it
leaves (and by the lease owner where a worker holds it), so each item is recorded once.
The SQLite/PostgreSQL differences of the hub's statements are here and nowhere else.
"""

import itertools
import operator
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Row,
    insert,
    update,
)

from gateway.db import chunked
from gateway.runs import records
from gateway.runs.lifecycle import driver
from gateway.runs.models import UNRECORDED_STATES, WORK_ITEMS, ItemState

# Rows of a new run's items sent to the driver at a time (SQLite's executemany).
INSERT_CHUNK = 10_000

_COPY_ITEMS = "COPY work_items (run_id, run_service_id, image_id, seq, state, attempts) FROM STDIN"
_INSERT_ITEMS = (
    "INSERT INTO work_items (run_id, run_service_id, image_id, seq, state, attempts) "
    f"VALUES ({{p}}, {{p}}, {{p}}, {{p}}, '{ItemState.PENDING}', 0)"
)


def insert_pending(
    conn: Connection, *, services: Iterable[Iterator[tuple[int, int, int, int]]]
) -> None:
    """Insert the pending items of a new run: each of `services` yields its items'
    (run id, run service id, image id, seq).

    Straight through the driver (COPY on PostgreSQL, executemany on SQLite): a run over
    100,000 images has 100,000 rows per service, and building each through the ORM
    would keep the request waiting.
    """
    if conn.dialect.name == "postgresql":
        psycopg = conn.connection.driver_connection  # in this transaction
        assert psycopg is not None
        with psycopg.cursor() as cursor, cursor.copy(_COPY_ITEMS) as copy:
            for rows in services:
                for row in rows:
                    copy.write_row((*row, ItemState.PENDING.value, 0))
        return
    sql = _INSERT_ITEMS.format(p=driver.placeholder(conn))
    for rows in services:
        while chunk := list(itertools.islice(rows, INSERT_CHUNK)):
            conn.exec_driver_sql(sql, chunk)


def insert_recorded(conn: Connection, *, rows: Sequence[dict[str, Any]]) -> None:
    """Insert items recorded as they are created (the columns of each in `rows`)."""
    conn.execute(insert(WORK_ITEMS), [{**row, "state": ItemState.DONE} for row in rows])


Claimed = Row[int, int, int]  # a leased item's (id, image_id, seq)


def claim(
    conn: Connection, *, worker_id: str, wants: dict[int, int], expires: datetime
) -> dict[int, Sequence[Claimed]]:
    """Lease the next `wants[run_service_id]` pending items of each run service, in `seq`
    order; returns the rows (id, image_id, seq) leased per run service (none: left out).

    One statement per run service, straight through the driver (`driver`): a worker
    claims many times a second, and SQLAlchemy's compiling and result rows cost more than
    the database's own work."""
    claimed: dict[int, Sequence[Claimed]] = {}
    sqlite = driver.is_sqlite(conn)
    statement = _CLAIM_SQL["sqlite" if sqlite else "postgresql"]
    leased_to = (worker_id, driver.sqlite_datetime(expires) if sqlite else expires)
    for run_service_id, count in wants.items():
        if count <= 0:
            continue
        picked = (run_service_id, count)
        params = (*leased_to, *picked) if sqlite else (*picked, *leased_to)
        rows = conn.exec_driver_sql(statement, params).all()
        if rows:
            claimed[run_service_id] = cast(Sequence[Claimed], rows)
    return claimed


# Lease the first `n` pending items of a run service by `seq`. On PostgreSQL the rows are
# picked in a MATERIALIZED CTE with FOR UPDATE SKIP LOCKED: as a plain `IN (subquery)`
# PostgreSQL may run the subquery again for each row it updates, each run skipping the
# rows just taken, and the LIMIT would not hold. SQLite has a single worker and no row
# locks; the subquery form is exact there.
_CLAIM_SQL = {
    "postgresql": (
        "WITH picked AS MATERIALIZED (SELECT id FROM work_items "
        f"WHERE run_service_id = %s AND state = '{ItemState.PENDING}' ORDER BY seq LIMIT %s "
        "FOR UPDATE SKIP LOCKED) "
        f"UPDATE work_items SET state = '{ItemState.LEASED}', lease_owner = %s, "
        "lease_expires_at = %s FROM picked WHERE work_items.id = picked.id "
        "RETURNING work_items.id, work_items.image_id, work_items.seq"
    ),
    "sqlite": (
        f"UPDATE work_items SET state = '{ItemState.LEASED}', lease_owner = ?, "
        "lease_expires_at = ? WHERE id IN (SELECT id FROM work_items "
        f"WHERE run_service_id = ? AND state = '{ItemState.PENDING}' ORDER BY seq LIMIT ?) "
        "RETURNING id, image_id, seq"
    ),
}


def extend(
    conn: Connection, *, worker_id: str, run_service_ids: Iterable[int], expires: datetime
) -> None:
    """Every item of these run services leased to this worker stays leased to `expires`."""
    for ids in chunked(sorted(run_service_ids)):
        conn.execute(
            update(WORK_ITEMS)
            .where(
                WORK_ITEMS.c.run_service_id.in_(ids),
                WORK_ITEMS.c.state == ItemState.LEASED,
                WORK_ITEMS.c.lease_owner == worker_id,
            )
            .values(lease_expires_at=expires)
        )


# The columns a result sets (the fields of `ResultRecord` of the same names).
RESULT_FIELDS = (
    "outcome",
    "attempts",
    "latency_ms",
    "queue_ms",
    "http_status",
    "request_id",
    "raw",
    "tags",
    "detail",
    "attempt_log",
    "finished_at",
)
# Converted here, once, as each row's last three values; the others go as they are.
_CONVERTED = ("tags", "attempt_log", "finished_at")
_AS_IS = tuple(name for name in RESULT_FIELDS if name not in _CONVERTED)
_as_is = operator.itemgetter(*(records.FIELD_AT[name] for name in _AS_IS))


def _record_sql(placeholder: str) -> str:
    sets = ", ".join(f"{name} = {placeholder}" for name in (*_AS_IS, *_CONVERTED))
    return (
        f"UPDATE work_items SET state = '{ItemState.DONE}', lease_expires_at = NULL, {sets} "
        f"WHERE id = {placeholder} AND lease_owner = {placeholder} "
        f"AND state = '{ItemState.LEASED}'"
    )


_RECORD_SQL = {marker: _record_sql(marker) for marker in ("?", "%s")}


def record_results(
    conn: Connection, *, worker_id: str, results: Sequence[records.ResultRecord]
) -> int:
    """`record_rows` of these records."""
    return record_rows(conn, worker_id=worker_id, rows=[records.row_of(r) for r in results])


def record_rows(conn: Connection, *, worker_id: str, rows: Sequence[records.Row]) -> int:
    """Write finished items, each given as its record's row (`records.row_of`), in one
    executemany. Items no longer leased by this worker are left alone. Returns how many
    were written.

    This is the hub's hottest statement, so it goes to the driver as plain SQL with
    values converted here once (`driver`).
    """
    if not rows:
        return 0
    sqlite = driver.is_sqlite(conn)
    encode, join, as_is, text_of = driver.json_chunks, "".join, _as_is, driver.sqlite_datetime
    tags_at, log_at, finished_at, item_at = (
        records.TAGS,
        records.ATTEMPT_LOG,
        records.FINISHED_AT,
        records.ITEM_ID,
    )
    params = []
    for row in rows:
        tags, log, finished = row[tags_at], row[log_at], row[finished_at]
        params.append(
            as_is(row)
            + (
                None if tags is None else join(encode(tags, 0)),
                None if log is None else join(encode(log, 0)),
                text_of(finished) if sqlite else finished,
                row[item_at],
                worker_id,
            )
        )
    written = conn.exec_driver_sql(_RECORD_SQL[driver.placeholder(conn)], params).rowcount
    return int(written) if written is not None and written >= 0 else len(rows)


def mark_unsent(
    conn: Connection, *, run_service_id: int, outcome: str, detail: str, now: datetime
) -> list[int]:
    """Record every item of a run service still pending or leased with `outcome`, never
    sent (attempts 0); returns their image ids."""
    return list(
        conn.execute(
            update(WORK_ITEMS)
            .where(
                WORK_ITEMS.c.run_service_id == run_service_id,
                WORK_ITEMS.c.state.in_(UNRECORDED_STATES),
            )
            .values(
                state=ItemState.DONE,
                lease_owner=None,
                lease_expires_at=None,
                outcome=outcome,
                attempts=0,
                detail=detail,
                finished_at=now,
            )
            .returning(WORK_ITEMS.c.image_id)
        ).scalars()
    )


def give_back(
    conn: Connection,
    *,
    worker_id: str,
    item_ids: Sequence[int] = (),
    run_service_ids: Iterable[int] = (),
) -> int:
    """These items, and every item of these run services, that this worker leased and did
    not record become pending (claimed and never sent, or held by a worker that stops);
    returns how many."""
    given = 0
    for column, ids in (
        (WORK_ITEMS.c.id, list(item_ids)),
        (WORK_ITEMS.c.run_service_id, sorted(run_service_ids)),
    ):
        for chunk in chunked(ids):
            result = conn.execute(
                update(WORK_ITEMS)
                .where(
                    column.in_(chunk),
                    WORK_ITEMS.c.state == ItemState.LEASED,
                    WORK_ITEMS.c.lease_owner == worker_id,
                )
                .values(state=ItemState.PENDING, lease_owner=None, lease_expires_at=None)
            )
            given += int(result.rowcount or 0)
    return given


def expire(conn: Connection, *, run_service_ids: Iterable[int], now: datetime) -> None:
    """Items of these run services whose lease expired (their worker died) are pending."""
    for ids in chunked(list(run_service_ids)):
        conn.execute(
            update(WORK_ITEMS)
            .where(
                WORK_ITEMS.c.run_service_id.in_(ids),
                WORK_ITEMS.c.state == ItemState.LEASED,
                WORK_ITEMS.c.lease_expires_at < now,
            )
            .values(state=ItemState.PENDING, lease_owner=None, lease_expires_at=None)
        )


def free_all(conn: Connection) -> int:
    """Every leased item is pending, whoever leased it; returns how many."""
    freed = conn.execute(
        update(WORK_ITEMS)
        .where(WORK_ITEMS.c.state == ItemState.LEASED)
        .values(state=ItemState.PENDING, lease_owner=None, lease_expires_at=None)
    ).rowcount
    return int(freed or 0)


def reopen(conn: Connection, *, item_ids: Sequence[int], cleared: Iterable[str]) -> None:
    """Recorded items are pending again, their `cleared` result columns emptied and
    their attempts back to 0."""
    emptied = {**dict.fromkeys(cleared), "attempts": 0}
    for chunk in chunked(item_ids):
        conn.execute(
            update(WORK_ITEMS)
            .where(WORK_ITEMS.c.id.in_(chunk), WORK_ITEMS.c.state == ItemState.DONE)
            .values(state=ItemState.PENDING, lease_owner=None, lease_expires_at=None, **emptied)
        )

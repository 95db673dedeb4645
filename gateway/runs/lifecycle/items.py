"""Every change of a work item's state (`WorkItem.state`, `ItemState`).

    insert_pending      (new) -> pending, every item of a new run
    insert_recorded     (new) -> done, items whose results the hub already has (a file)
    claim               pending -> leased to a worker, in `seq` order
    extend              a worker's leases last longer (its heartbeat)
    record_results      leased to this worker -> done, with its result
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
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Executable,
    Row,
    bindparam,
    insert,
    select,
    update,
)

from gateway.db import chunked
from gateway.runs.models import UNRECORDED_STATES, WORK_ITEMS, ItemState

if TYPE_CHECKING:
    from gateway.runs.records import ResultRecord

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
        driver = conn.connection.driver_connection  # psycopg, in this transaction
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(_COPY_ITEMS) as copy:
            for rows in services:
                for row in rows:
                    copy.write_row((*row, ItemState.PENDING.value, 0))
        return
    placeholder = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = _INSERT_ITEMS.format(p=placeholder)
    for rows in services:
        while chunk := list(itertools.islice(rows, INSERT_CHUNK)):
            conn.exec_driver_sql(sql, chunk)


def insert_recorded(conn: Connection, *, rows: Sequence[dict[str, Any]]) -> None:
    """Insert items recorded as they are created (the columns of each in `rows`)."""
    conn.execute(insert(WORK_ITEMS), [{**row, "state": ItemState.DONE} for row in rows])


def claim(
    conn: Connection, *, worker_id: str, wants: dict[int, int], expires: datetime
) -> dict[int, Sequence[Row[Any]]]:
    """Lease the next `wants[run_service_id]` pending items of each run service, in `seq`
    order; returns the rows (id, image_id, seq) leased per run service (none: left out)."""
    claimed: dict[int, Sequence[Row[Any]]] = {}
    statement = _claim_statement(conn.dialect.name)
    for run_service_id, count in wants.items():
        if count <= 0:
            continue
        rows = conn.execute(
            statement,
            {"rs": run_service_id, "n": count, "owner": worker_id, "expires": expires},
        ).all()
        if rows:
            claimed[run_service_id] = rows
    return claimed


def _claim_statement(dialect: str) -> Executable:
    """One statement per run service: lease the first `n` pending items by `seq`.

    On PostgreSQL the rows are picked in a MATERIALIZED CTE with FOR UPDATE SKIP LOCKED:
    as a plain `IN (subquery)` PostgreSQL may run the subquery again for each row it
    updates, each run skipping the rows just taken, and the LIMIT would not hold. SQLite
    has a single worker and no row locks; the subquery form is exact there.
    """
    picked = (
        select(WORK_ITEMS.c.id)
        .where(
            WORK_ITEMS.c.run_service_id == bindparam("rs"),
            WORK_ITEMS.c.state == ItemState.PENDING,
        )
        .order_by(WORK_ITEMS.c.seq)
        .limit(bindparam("n"))
    )
    claim = update(WORK_ITEMS).values(
        state=ItemState.LEASED,
        lease_owner=bindparam("owner"),
        lease_expires_at=bindparam("expires", type_=WORK_ITEMS.c.lease_expires_at.type),
    )
    if dialect == "postgresql":
        cte = picked.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        claim = claim.where(WORK_ITEMS.c.id == cte.c.id)
    else:
        claim = claim.where(WORK_ITEMS.c.id.in_(picked.scalar_subquery()))
    return claim.returning(WORK_ITEMS.c.id, WORK_ITEMS.c.image_id, WORK_ITEMS.c.seq)


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


# The columns a result sets, in the order of `record_results`' parameters.
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
# SQLAlchemy's own text form of a SQLite DATETIME, so that the ORM reads these back.
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def _record_sql(placeholder: str) -> str:
    sets = ", ".join(f"{name} = {placeholder}" for name in RESULT_FIELDS)
    return (
        f"UPDATE work_items SET state = '{ItemState.DONE}', lease_expires_at = NULL, {sets} "
        f"WHERE id = {placeholder} AND lease_owner = {placeholder} "
        f"AND state = '{ItemState.LEASED}'"
    )


_RECORD_SQL = {
    "qmark": _record_sql("?"),
    "format": _record_sql("%s"),
    "pyformat": _record_sql("%s"),
}


def _json_text() -> Any:
    """`json.dumps` with its defaults, without building an encoder per call (C's
    `c_make_encoder`, made once: 20 -> 5 µs for the two texts of a result); plain
    `json.dumps` where the C encoder is missing or writes another text."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.dumps
    try:
        chunks = make(
            None,
            json.JSONEncoder().default,
            json.encoder.encode_basestring_ascii,
            None,
            ": ",
            ", ",
            False,
            False,
            True,
        )
        sample = [("a", 0.5), {"n": 1, "x": None, "é": 1e-7, "s": 'q"\n'}]
        if "".join(chunks(sample, 0)) != json.dumps(sample):
            return json.dumps
    except Exception:
        return json.dumps
    return lambda value: "".join(chunks(value, 0))


_dumps = _json_text()


def record_results(conn: Connection, *, worker_id: str, results: Sequence["ResultRecord"]) -> int:
    """Write finished items in one executemany. Items no longer leased by this worker are
    left alone. Returns how many were written.

    This is the hub's hottest statement, so it goes to the driver as plain SQL with
    values converted here once (JSON text, SQLite's datetime text): building each row's
    parameters through SQLAlchemy costs more than the database's own work.
    """
    if not results:
        return 0
    dialect = conn.dialect
    sql = _RECORD_SQL[dialect.paramstyle]
    sqlite = dialect.name == "sqlite"
    dumps = _dumps
    params = []
    for r in results:
        tags, log, finished = r.tags, r.attempt_log, r.finished_at
        params.append(
            (  # RESULT_FIELDS, then the item and its owner
                r.outcome,
                r.attempts,
                r.latency_ms,
                r.queue_ms,
                r.http_status,
                r.request_id,
                r.raw,
                None if tags is None else dumps(tags),
                r.detail,
                None if log is None else dumps(log),
                finished.strftime(_SQLITE_DATETIME) if sqlite else finished,
                r.item_id,
                worker_id,
            )
        )
    written = conn.exec_driver_sql(sql, params).rowcount
    return int(written) if written is not None and written >= 0 else len(results)


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

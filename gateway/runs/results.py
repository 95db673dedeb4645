"""What the worker records: the typed result of a work item, and the statements that write
results and count them in the live scores, in one transaction (exactly once).

    ResultRecord.of(answer, ...)     the dispatcher's answer, as a work item's columns
    record_results                   one executemany, each row guarded by the lease
    record_scored                    record_results + the batch added to the live scores
    record_scored_checked            the same for the rows still leased (after LeaseLost)
    record_unsent                    every unrecorded item of a service, never sent (and
                                     counted in the live scores)

Live scores (`live_scores` rows, the counters: `gateway.scoring.live`) are brought up to
date in the very transaction that records the results, so that a worker that restarts, or
a second worker, goes on from what is committed and every result is counted once:

- `record_scored` writes the batch and, when every row was written, adds the batch's tally
  to the rows of its run services. When some row was not written (its lease was lost) it
  cannot tell which, so it raises `LeaseLost` and its transaction rolls back;
- `record_scored_checked` then locks the batch's items still leased to this worker
  (`FOR UPDATE`; on SQLite the single writer's snapshot), writes those and counts those.

Stored rows are changed under their row lock (`SELECT ... FOR UPDATE`, in run service
order, so that two workers' batches never wait on each other in a circle).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import Connection, bindparam, select, update

from gateway.db import chunked, utcnow
from gateway.dispatch.answers import Answer
from gateway.errors import Outcome
from gateway.runs.finish import run_split
from gateway.runs.models import (
    IMAGES,
    LIVE_SCORE_PARTS,
    LIVE_SCORES,
    UNRECORDED_STATES,
    WORK_ITEMS,
    ItemState,
)
from gateway.scoring.live import LiveTally

# Answers keep this much of the recognizer's body.
RAW_CHARS = 1024
# `Outcome.X.value` goes through enum's descriptor machinery: slow enough to matter at
# thousands of results a second.
_OUTCOME_TEXT = {outcome: outcome.value for outcome in Outcome}


class LoggedAttempt(TypedDict):
    """One attempt of a request in `work_items.attempt_log` (`Attempt.as_dict()`)."""

    n: int
    instance: str
    outcome: str
    latency_ms: float | None
    status: int | None
    detail: str | None


@dataclass(slots=True)
class ResultRecord:
    """A work item's result: its columns (`RESULT_FIELDS`), with the run service it
    belongs to and its image's true tags, which the live scores count it against."""

    item_id: int
    run_service_id: int
    outcome: str
    attempts: int
    latency_ms: float | None
    queue_ms: float | None
    http_status: int | None
    request_id: str | None
    raw: str | None
    tags: list[tuple[str, float]] | None  # ranked best first
    detail: str | None
    attempt_log: list[LoggedAttempt] | None
    finished_at: datetime
    truth: Sequence[str] = ()
    # The part of a split run's images the item's image is in (gateway.scoring.split).
    part: str | None = None

    @classmethod
    def of(
        cls,
        answer: Answer,
        *,
        item_id: int,
        run_service_id: int,
        queue_ms: float,
        truth: Sequence[str],
        part: str | None = None,
    ) -> "ResultRecord":
        """The record of the dispatcher's answer, finished now."""
        return cls(
            item_id=item_id,
            run_service_id=run_service_id,
            outcome=_OUTCOME_TEXT[answer.outcome],
            attempts=len(answer.attempts),
            latency_ms=answer.latency_ms,
            queue_ms=queue_ms,
            http_status=answer.status,
            request_id=answer.request_id,
            raw=answer.raw[:RAW_CHARS] if answer.raw is not None else None,
            tags=[(tag.tag, tag.score) for tag in answer.tags],
            detail=answer.detail,
            attempt_log=[
                {
                    "n": a.number,
                    "instance": a.instance,
                    "outcome": _OUTCOME_TEXT[a.outcome],
                    "latency_ms": a.latency_ms,
                    "status": a.status,
                    "detail": a.detail,
                }
                for a in answer.attempts
            ],
            finished_at=utcnow(),
            truth=truth,
            part=part,
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


def record_results(conn: Connection, *, worker_id: str, results: Sequence[ResultRecord]) -> int:
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
    dumps = json.dumps
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


@dataclass(slots=True)
class LiveDeltas:
    """Tallies still to be added to the live scores: each run service's, and for a split
    run each (run service, part)'s (`live_score_parts`)."""

    services: dict[int, LiveTally] = field(default_factory=dict)
    parts: dict[tuple[int, str], LiveTally] = field(default_factory=dict)

    def tallies(self, *, run_service_id: int, part: str | None) -> list[LiveTally]:
        """The tallies a result of the run service (in `part`, if split) is added to."""
        found = [self.services.setdefault(run_service_id, LiveTally())]
        if part is not None:
            found.append(self.parts.setdefault((run_service_id, part), LiveTally()))
        return found

    def merge(self, other: "LiveDeltas") -> None:
        for key, tally in other.services.items():
            self.services.setdefault(key, LiveTally()).merge(tally)
        for part_key, tally in other.parts.items():
            self.parts.setdefault(part_key, LiveTally()).merge(tally)


def record_unsent(
    conn: Connection,
    *,
    run_service_id: int,
    outcome: str,
    detail: str,
    now: datetime,
    deltas: LiveDeltas | None = None,
) -> int:
    """Record every item of a run service still pending or leased with `outcome` (never
    sent: attempts 0), e.g. `unreachable` or `missed`, and count them in its live scores;
    returns how many. A late result of a leased one is refused by the lease check of
    `record_results`.

    Counted, so that the live scores are a true count of every recorded result: a re-send
    (gateway.runs.resend) takes such results back from them. Their finish time is left
    out of the tally: nothing was sent, so they say nothing of the service's throughput.
    With `deltas`, their tally is added there for the caller to merge once it has recorded
    every service's (`merge_into_live_scores`): the live rows are then locked last, in
    order, and never wait in a circle with a worker's batch.
    """
    image_ids = list(
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
    truths: dict[int, list[str]] = {}
    for ids in chunked(sorted(set(image_ids))):
        for image_id, truth in conn.execute(
            select(IMAGES.c.id, IMAGES.c.truth).where(IMAGES.c.id.in_(ids))
        ):
            truths[image_id] = [str(tag) for tag in truth or ()]
    split = run_split(conn, run_service_id=run_service_id) if image_ids else None
    found = LiveDeltas()
    for image_id in image_ids:
        part = split.part_of(image_id) if split is not None else None
        for tally in found.tallies(run_service_id=run_service_id, part=part):
            tally.add(
                outcome=outcome,
                tags=None,
                truth=truths.get(image_id, ()),
                latency_ms=None,
                finished_at=None,
            )
    if deltas is not None:
        deltas.merge(found)
    elif image_ids:
        merge_into_live_scores(conn, deltas=found)
    return len(image_ids)


# Live scores

# Every counter column of a row, set from parameters `v_<column>` (executemany).
_COUNTERS = list(LiveTally().columns())
_UPDATE_ROW = (
    update(LIVE_SCORES)
    .where(LIVE_SCORES.c.run_service_id == bindparam("v_run_service_id"))
    .values({name: bindparam(f"v_{name}", type_=LIVE_SCORES.c[name].type) for name in _COUNTERS})
)
_UPDATE_PART_ROW = (
    update(LIVE_SCORE_PARTS)
    .where(
        LIVE_SCORE_PARTS.c.run_service_id == bindparam("v_run_service_id"),
        LIVE_SCORE_PARTS.c.part == bindparam("v_part"),
    )
    .values(
        {name: bindparam(f"v_{name}", type_=LIVE_SCORE_PARTS.c[name].type) for name in _COUNTERS}
    )
)


class LeaseLost(Exception):
    """Some results of a batch were not written: their items are no longer leased to this
    worker. Nothing of the batch was written; `record_scored_checked` sorts it out."""


def record_scored(conn: Connection, *, worker_id: str, batch: Sequence[ResultRecord]) -> int:
    """Record `batch` and count it in the live scores, in this transaction; returns how
    many were written (all of them).

    Raises LeaseLost (nothing may be committed then) when some item was no longer leased
    to this worker, or when one item comes twice.
    """
    ids = {record.item_id for record in batch}
    written = record_results(conn, worker_id=worker_id, results=batch)
    if written != len(batch) or len(ids) != len(batch):
        raise LeaseLost(f"{len(batch) - written} of {len(batch)} results were not written")
    add_to_live_scores(conn, batch=batch)
    return written


def record_scored_checked(
    conn: Connection, *, worker_id: str, batch: Sequence[ResultRecord]
) -> int:
    """Record and count only the results of `batch` whose items are still leased to this
    worker (the first result of an item that comes twice); returns how many."""
    still_held: set[int] = set()
    for ids in chunked(sorted({record.item_id for record in batch})):
        still_held.update(
            conn.execute(
                select(WORK_ITEMS.c.id)
                .where(
                    WORK_ITEMS.c.id.in_(ids),
                    WORK_ITEMS.c.state == ItemState.LEASED,
                    WORK_ITEMS.c.lease_owner == worker_id,
                )
                .with_for_update()
            ).scalars()
        )
    kept: list[ResultRecord] = []
    for record in batch:
        if record.item_id in still_held:
            still_held.discard(record.item_id)
            kept.append(record)
    written = record_results(conn, worker_id=worker_id, results=kept)
    if written != len(kept):  # the rows are locked: only a bug gets here
        raise RuntimeError(f"{written} of {len(kept)} locked results were written")
    add_to_live_scores(conn, batch=kept)
    return written


def add_to_live_scores(conn: Connection, *, batch: Sequence[ResultRecord]) -> None:
    """Add the tally of recorded results to their run services' live scores, and for a
    split run's results to their part's too. Every run service has a row (created with
    its run; migration 0013 for runs from before live scores)."""
    deltas = LiveDeltas()
    for record in batch:
        for tally in deltas.tallies(run_service_id=record.run_service_id, part=record.part):
            tally.add(
                outcome=record.outcome,
                tags=record.tags,
                truth=record.truth,
                latency_ms=record.latency_ms,
                finished_at=record.finished_at,
            )
    merge_into_live_scores(conn, deltas=deltas)


def merge_into_live_scores(conn: Connection, *, deltas: "LiveDeltas") -> None:
    """Add each run service's tally to its live scores row, locked in run service order,
    then each part's to its part row. A run service without a row would be
    left alone; every run service has one (migration 0013 for runs from before them)."""
    part_deltas = deltas.parts
    services = deltas.services
    if not services:
        return
    stored = conn.execute(
        select(LIVE_SCORES)
        .where(LIVE_SCORES.c.run_service_id.in_(sorted(services)))
        .order_by(LIVE_SCORES.c.run_service_id)
        .with_for_update()
    ).all()
    params: list[dict[str, Any]] = []
    for found in stored:
        tally = LiveTally.of_columns(found._mapping)
        tally.merge(services[found.run_service_id])
        values = {f"v_{name}": value for name, value in tally.columns().items()}
        params.append({"v_run_service_id": found.run_service_id, **values})
    if params:
        conn.execute(_UPDATE_ROW, params)  # one executemany for every run service
    if part_deltas:
        _add_to_parts(conn, part_deltas)


def _add_to_parts(conn: Connection, deltas: dict[tuple[int, str], LiveTally]) -> None:
    # Locked after `live_scores`, in the same order: two workers never wait in a circle.
    stored = conn.execute(
        select(LIVE_SCORE_PARTS)
        .where(LIVE_SCORE_PARTS.c.run_service_id.in_(sorted({rs for rs, _ in deltas})))
        .order_by(LIVE_SCORE_PARTS.c.run_service_id, LIVE_SCORE_PARTS.c.part)
        .with_for_update()
    ).all()
    params: list[dict[str, Any]] = []
    for found in stored:
        delta = deltas.get((found.run_service_id, found.part))
        if delta is None:
            continue
        tally = LiveTally.of_columns(found._mapping)
        tally.merge(delta)
        values = {f"v_{name}": value for name, value in tally.columns().items()}
        params.append({"v_run_service_id": found.run_service_id, "v_part": found.part, **values})
    if params:
        conn.execute(_UPDATE_PART_ROW, params)

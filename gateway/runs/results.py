"""What the worker records: the typed result of a work item, and the statements that write
results and count them in the live scores, in one transaction (exactly once).

    ResultRecord (gateway.runs.records) the typed record these statements write
    record_results                   one executemany, each row guarded by the lease
                                     (`lifecycle.items`, where item states change)
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

The statements that change the items and the live score rows are `gateway.runs.lifecycle`'s
(`items`, `live`): this module decides what to record, that package how.
"""

from collections.abc import Collection, Sequence
from datetime import datetime
from operator import itemgetter

from sqlalchemy import Connection, select

from gateway.db import chunked
from gateway.runs import lifecycle
from gateway.runs.finish import run_split
from gateway.runs.lifecycle.items import record_results as record_results
from gateway.runs.lifecycle.live import LiveDeltas
from gateway.runs.models import (
    IMAGES,
    WORK_ITEMS,
    ItemState,
)
from gateway.runs.records import (
    FINISHED_AT,
    ITEM_ID,
    LATENCY_MS,
    OUTCOME,
    PART,
    RUN_SERVICE_ID,
    TAGS,
    TRUTH,
    ResultRecord,
    Row,
    row_of,
)
from gateway.scoring.metrics import ServiceScorer


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
    every service's (`lifecycle.live.merge`): the live rows are then locked last, in
    order, and never wait in a circle with a worker's batch.
    """
    image_ids = lifecycle.items.mark_unsent(
        conn, run_service_id=run_service_id, outcome=outcome, detail=detail, now=now
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
        lifecycle.live.merge(conn, deltas=found)
    return len(image_ids)


class LeaseLost(Exception):
    """Some results of a batch were not written: their items are no longer leased to this
    worker. Nothing of the batch was written; `record_scored_checked` sorts it out."""


def record_scored(conn: Connection, *, worker_id: str, batch: Sequence[ResultRecord]) -> int:
    """Record `batch` and count it in the live scores, in this transaction; returns how
    many were written (all of them).

    Raises LeaseLost (nothing may be committed then) when some item was no longer leased
    to this worker, or when one item comes twice.
    """
    written, _ = record_scored_rows(conn, worker_id=worker_id, rows=list(map(row_of, batch)))
    return written


def record_scored_rows(
    conn: Connection, *, worker_id: str, rows: Sequence[Row], scoring: Collection[int] = ()
) -> tuple[int, dict[int, ServiceScorer | None]]:
    """`record_scored` of the records `rows` hold (`records.row_of`), the rows of the run
    services in `scoring` scored on the way (`live_deltas`); returns how many were written
    and those scorers."""
    written = lifecycle.items.record_rows(conn, worker_id=worker_id, rows=rows)
    if written != len(rows) or len({row[ITEM_ID] for row in rows}) != len(rows):
        raise LeaseLost(f"{len(rows) - written} of {len(rows)} results were not written")
    deltas, scorers = live_deltas(rows, scoring=scoring)
    lifecycle.live.merge(conn, deltas=deltas)
    return written, scorers


def record_scored_checked(
    conn: Connection, *, worker_id: str, batch: Sequence[ResultRecord]
) -> int:
    """Record and count only the results of `batch` whose items are still leased to this
    worker (the first result of an item that comes twice); returns how many."""
    return record_checked_rows(conn, worker_id=worker_id, rows=list(map(row_of, batch)))


def record_checked_rows(conn: Connection, *, worker_id: str, rows: Sequence[Row]) -> int:
    """`record_scored_checked` of the records `rows` hold."""
    still_held: set[int] = set()
    for ids in chunked(sorted({row[ITEM_ID] for row in rows})):
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
    kept: list[Row] = []
    for row in rows:
        if row[ITEM_ID] in still_held:
            still_held.discard(row[ITEM_ID])
            kept.append(row)
    written = lifecycle.items.record_rows(conn, worker_id=worker_id, rows=kept)
    if written != len(kept):  # the rows are locked: only a bug gets here
        raise RuntimeError(f"{written} of {len(kept)} locked results were written")
    lifecycle.live.merge(conn, deltas=live_deltas(kept)[0])
    return written


def add_to_live_scores(conn: Connection, *, batch: Sequence[ResultRecord]) -> None:
    """Add the tally of recorded results to their run services' live scores, and for a
    split run's results to their part's too. Every run service has a row (created with
    its run; migration 0013 for runs from before live scores)."""
    lifecycle.live.merge(conn, deltas=live_deltas(list(map(row_of, batch)))[0])


# What of a row each count takes (`LiveTally.add_many`, `ServiceScorer.add_many`, and the
# part of the first that a scorer's counts leave to do, `LiveTally.add_scored`).
_TALLIED = itemgetter(OUTCOME, TAGS, TRUTH, LATENCY_MS, FINISHED_AT)
_SCORED = itemgetter(OUTCOME, TAGS, TRUTH, LATENCY_MS)
_TIMED = itemgetter(OUTCOME, LATENCY_MS, FINISHED_AT)


def live_deltas(
    rows: Sequence[Row], *, scoring: Collection[int] = ()
) -> tuple[LiveDeltas, dict[int, ServiceScorer | None]]:
    """The tallies of recorded `rows`: per run service, and per (run service, part) for a
    split run's. The rows of each run service in `scoring` are counted by a
    `ServiceScorer` of their own, returned, and its tally takes the scorer's counts, so
    that each row is ranked against its true tags once; where such a scorer refused a row
    (ValueError, TypeError) it is None, and the tally counts them as any other."""
    services: dict[int, list[Row]] = {}
    parts: dict[tuple[int, str], list[Row]] = {}
    for row in rows:
        group = services.get(row[RUN_SERVICE_ID])
        if group is None:
            group = services[row[RUN_SERVICE_ID]] = []
        group.append(row)
        if row[PART] is not None:
            parts.setdefault((row[RUN_SERVICE_ID], row[PART]), []).append(row)
    deltas = LiveDeltas()
    scorers: dict[int, ServiceScorer | None] = {}
    for run_service_id, group in services.items():
        tally = deltas.tally(run_service_id)
        if run_service_id in scoring:
            scorer = ServiceScorer()
            try:
                scorer.add_many(map(_SCORED, group))
            except (ValueError, TypeError):
                scorers[run_service_id] = None  # its rows are counted below, as any other
            else:
                scorers[run_service_id] = scorer
                tally.add_scored(scorer.counts(), map(_TIMED, group))
                continue
        tally.add_many(list(map(_TALLIED, group)))
    for (run_service_id, part), group in parts.items():
        deltas.tally(run_service_id, part).add_many(list(map(_TALLIED, group)))
    return deltas, scorers

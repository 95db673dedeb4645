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

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from gateway.db import chunked
from gateway.runs import lifecycle
from gateway.runs.finish import run_split
from gateway.runs.lifecycle.items import record_results
from gateway.runs.lifecycle.live import LiveDeltas
from gateway.runs.models import (
    IMAGES,
    WORK_ITEMS,
    ItemState,
)
from gateway.runs.records import ResultRecord


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
    lifecycle.live.merge(conn, deltas=deltas)

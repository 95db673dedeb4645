"""What the worker records: the typed result of a work item, and the statements that write
results and count them in the live scores, in one transaction (exactly once).

    ResultRecord.of(answer, ...)     the dispatcher's answer, as a work item's columns
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
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from sqlalchemy import Connection, select

from gateway.db import chunked, utcnow
from gateway.dispatch.answers import Answer
from gateway.errors import Outcome
from gateway.runs import lifecycle
from gateway.runs.finish import run_split
from gateway.runs.lifecycle.items import record_results
from gateway.runs.lifecycle.live import LiveDeltas
from gateway.runs.models import (
    IMAGES,
    WORK_ITEMS,
    ItemState,
)

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
    """A work item's result: its columns (`lifecycle.items.RESULT_FIELDS`), with the run service it
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
    split run's results to their part's too. Run services without a row (runs created
    before live scores) are left alone."""
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

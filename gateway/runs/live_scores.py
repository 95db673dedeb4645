"""Live scores in the database: one `live_scores` row per run service, created with the
run and brought up to date in the very transaction that records its results, so that a
worker that restarts, or a second worker, goes on from what is committed and every
recorded result is counted once (the counters: `gateway.scoring.live`).

Recording a batch (the engine's writer):

- `record_scored` writes the batch (`claims.record_results`) and, when every row was
  written, adds the batch's tally to the rows of its run services. When some row was not
  written (its lease was lost) it cannot tell which, so it raises `LeaseLost` and its
  transaction rolls back;
- `record_scored_checked` then locks the batch's items still leased to this worker
  (`FOR UPDATE`; on SQLite the single writer's snapshot), writes those and counts those.

Stored rows are changed under their row lock (`SELECT ... FOR UPDATE`, in run service
order, so that two workers' batches never wait on each other in a circle).
"""

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select, update

from gateway.errors import OUTCOMES
from gateway.runs import claims
from gateway.runs.claims import WORK_ITEMS, chunked
from gateway.runs.models import LiveScore
from gateway.scoring.live import LiveTally

LIVE_SCORES = cast(Table, LiveScore.__table__)
# Every counter column of a row, set from parameters `v_<column>` (executemany).
_COUNTERS = list(LiveTally().columns())
_UPDATE_ROW = (
    update(LIVE_SCORES)
    .where(LIVE_SCORES.c.run_service_id == bindparam("v_run_service_id"))
    .values({name: bindparam(f"v_{name}", type_=LIVE_SCORES.c[name].type) for name in _COUNTERS})
)


class LeaseLost(Exception):
    """Some results of a batch were not written: their items are no longer leased to this
    worker. Nothing of the batch was written; `record_scored_checked` sorts it out."""


@dataclass(frozen=True, slots=True)
class ScoredResult:
    """A result to record (`id` and `claims.RESULT_FIELDS`), with its run service and its
    image's true tags for the live scores."""

    run_service_id: int
    row: dict[str, Any]
    truth: Sequence[str]


@dataclass(frozen=True, slots=True)
class LiveRow:
    """A run service's live scores as stored."""

    run_service_id: int
    images_total: int
    tally: LiveTally


def create_rows(conn: Connection, *, run_id: int, totals: dict[int, int]) -> None:
    """Empty live scores for the run services of a new run: `totals` maps each run
    service to its number of images."""
    empty = LiveTally().columns()
    conn.execute(
        LIVE_SCORES.insert(),
        [
            {"run_service_id": rs, "run_id": run_id, "images_total": total, **empty}
            for rs, total in totals.items()
        ],
    )


def record_scored(conn: Connection, *, worker_id: str, batch: Sequence[ScoredResult]) -> int:
    """Record `batch` and count it in the live scores, in this transaction; returns how
    many were written (all of them).

    Raises LeaseLost (nothing may be committed then) when some item was no longer leased
    to this worker, or when one item comes twice.
    """
    ids = {scored.row["id"] for scored in batch}
    written = claims.record_results(conn, worker_id=worker_id, results=[s.row for s in batch])
    if written != len(batch) or len(ids) != len(batch):
        raise LeaseLost(f"{len(batch) - written} of {len(batch)} results were not written")
    add_to_rows(conn, batch=batch)
    return written


def record_scored_checked(
    conn: Connection, *, worker_id: str, batch: Sequence[ScoredResult]
) -> int:
    """Record and count only the results of `batch` whose items are still leased to this
    worker (the first result of an item that comes twice); returns how many."""
    still_held: set[int] = set()
    for ids in chunked(sorted({scored.row["id"] for scored in batch})):
        still_held.update(
            conn.execute(
                select(WORK_ITEMS.c.id)
                .where(
                    WORK_ITEMS.c.id.in_(ids),
                    WORK_ITEMS.c.state == "leased",
                    WORK_ITEMS.c.lease_owner == worker_id,
                )
                .with_for_update()
            ).scalars()
        )
    kept: list[ScoredResult] = []
    for scored in batch:
        if scored.row["id"] in still_held:
            still_held.discard(scored.row["id"])
            kept.append(scored)
    written = claims.record_results(conn, worker_id=worker_id, results=[s.row for s in kept])
    if written != len(kept):  # the rows are locked: only a bug gets here
        raise RuntimeError(f"{written} of {len(kept)} locked results were written")
    add_to_rows(conn, batch=kept)
    return written


def add_to_rows(conn: Connection, *, batch: Sequence[ScoredResult]) -> None:
    """Add the tally of recorded results to their run services' live scores. Run services
    without a row (runs created before live scores) are left alone."""
    deltas: dict[int, LiveTally] = defaultdict(LiveTally)
    for scored in batch:
        row = scored.row
        deltas[scored.run_service_id].add(
            outcome=row["outcome"],
            tags=row["tags"],
            truth=scored.truth,
            latency_ms=row["latency_ms"],
            finished_at=row["finished_at"],
        )
    if not deltas:
        return
    stored = conn.execute(
        select(LIVE_SCORES)
        .where(LIVE_SCORES.c.run_service_id.in_(sorted(deltas)))
        .order_by(LIVE_SCORES.c.run_service_id)
        .with_for_update()
    ).all()
    params = []
    for found in stored:
        tally = LiveTally.of_columns(found._mapping)
        tally.merge(deltas[found.run_service_id])
        values = {f"v_{name}": value for name, value in tally.columns().items()}
        params.append({"v_run_service_id": found.run_service_id, **values})
    if params:
        conn.execute(_UPDATE_ROW, params)  # one executemany for every run service


def read_rows(conn: Connection, *, run_service_ids: Collection[int]) -> dict[int, LiveRow]:
    """The live scores of these run services, by run service id (those that have one)."""
    rows: dict[int, LiveRow] = {}
    for ids in chunked(sorted(run_service_ids)):
        for row in conn.execute(select(LIVE_SCORES).where(LIVE_SCORES.c.run_service_id.in_(ids))):
            rows[row.run_service_id] = LiveRow(
                row.run_service_id, row.images_total, LiveTally.of_columns(row._mapping)
            )
    return rows


def outcome_counts(tally: LiveTally) -> dict[str, int]:
    """Counts of every outcome, zeros included, in SPEC order."""
    return {name: tally.outcomes.get(name, 0) for name in OUTCOMES}

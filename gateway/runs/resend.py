"""Re-sending a service's items (the organizer: `recoghub run resend`, `POST
/api/v1/runs/{id}/resend`): the recorded items of one service in one run whose outcome is
one of those chosen go back to `pending` and are sent again, while the run is open or
after it completed.

In one transaction, so that every result is counted once:

- each item's result is kept as history (`earlier_results`, read by `earlier_results`),
  then cleared: the item is `pending` again, and the workers send it like any other;
- each result is taken out of the service's live scores (`LiveTally.remove`, the same
  counters the workers add to), and for a split run out of its part's (`live_score_parts`),
  so progress and the leaderboard stay a true count;
- `run_services.resent` counts the images re-sent (the leaderboard's `resent`), and a
  passed or failed service and a completed run are reopened (`lifecycle.services.reopen`,
  `lifecycle.reopen_run`).

Only results that were not `ok` may be re-sent: an answer the team gave is its answer.
The run's row, then the run service's, are locked first (the order of the deadline's
statements), so a worker closing the service at the same moment either closes it before
(and the re-send reopens it) or sees the re-send (`finish.finish_service`).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from gateway.datasets.models import DatasetImage
from gateway.db import utcnow
from gateway.errors import OUTCOMES, InvalidInput, NotFound, Outcome
from gateway.registry.service import get_service
from gateway.runs import lifecycle
from gateway.runs.finish import done_items, run_split
from gateway.runs.models import (
    EARLIER_RESULTS,
    IMAGES,
    LIVE_SCORE_PARTS,
    LIVE_SCORES,
    WORK_ITEMS,
    EarlierResult,
    ItemState,
    Run,
    RunService,
    WorkItem,
)
from gateway.scoring.live import LiveTally
from gateway.scoring.split import Split

# The outcomes an organizer may have sent again: every one but `ok`.
RESENDABLE: tuple[str, ...] = tuple(name for name in OUTCOMES if name != Outcome.OK.value)
# The result columns a re-send keeps as history, then clears on the item.
_KEPT = (
    "outcome",
    "attempts",
    "latency_ms",
    "http_status",
    "request_id",
    "raw",
    "detail",
    "attempt_log",
    "finished_at",
)
_CLEARED = (*_KEPT, "queue_ms", "tags")


@dataclass(frozen=True, slots=True)
class Resent:
    """What a re-send did."""

    run_id: int
    service_guid: str
    images: int  # sent again now
    outcomes: dict[str, int]  # of those, how many had each outcome
    resent_total: int  # images of the service re-sent in this run, this time included
    run_state: str


def check_outcomes(outcomes: Sequence[str]) -> list[str]:
    """The chosen outcomes, each once; InvalidInput for none, an unknown one or `ok`."""
    chosen = list(dict.fromkeys(name.strip() for name in outcomes if name.strip()))
    allowed = ", ".join(RESENDABLE)
    if not chosen:
        raise InvalidInput(f"name at least one outcome to re-send; one of: {allowed}")
    for name in chosen:
        if name == Outcome.OK.value:
            raise InvalidInput(
                f"ok results are the team's answers and are not sent again; choose among: {allowed}"
            )
        if name not in RESENDABLE:
            raise InvalidInput(f"unknown outcome {name!r}; choose among: {allowed}")
    return chosen


def resend_items(
    session: Session, *, run_id: int, service_guid: str, outcomes: Sequence[str]
) -> Resent:
    """Send the service's recorded items with one of `outcomes` again (see the module
    doc). Commits.

    Raises InvalidInput for no outcome, an unknown one or `ok`; NotFound for an unknown
    run or service, or a service that takes no part in the run.
    """
    chosen = check_outcomes(outcomes)
    run = session.get(Run, run_id, with_for_update=True)
    if run is None:
        raise NotFound(f"no run {run_id}")
    svc = get_service(session, guid=service_guid)
    member = session.scalar(
        select(RunService)
        .where(RunService.run_id == run_id, RunService.service_id == svc.id)
        .with_for_update()
    )
    if member is None:
        raise NotFound(f"service {svc.guid} takes no part in run {run_id}")
    conn = session.connection()
    now = utcnow()
    rows = conn.execute(
        select(
            WORK_ITEMS.c.id,
            WORK_ITEMS.c.image_id,
            IMAGES.c.truth,
            *(WORK_ITEMS.c[name] for name in _KEPT),
        )
        .join(IMAGES, IMAGES.c.id == WORK_ITEMS.c.image_id)
        .where(
            WORK_ITEMS.c.run_service_id == member.id,
            WORK_ITEMS.c.state == ItemState.DONE,
            WORK_ITEMS.c.outcome.in_(chosen),
        )
        .order_by(WORK_ITEMS.c.seq)
        .with_for_update(of=WORK_ITEMS)
    ).all()
    counts = dict.fromkeys(chosen, 0)
    for row in rows:
        counts[row.outcome] += 1
    if rows:
        _keep_history(conn, run_id=run_id, run_service_id=member.id, rows=rows, now=now)
        _take_back(conn, run_service_id=member.id, rows=rows)
        lifecycle.services.count_resent(conn, run_service_id=member.id, images=len(rows))
        lifecycle.services.reopen(conn, run_service_id=member.id)
        lifecycle.reopen_run(conn, run_id=run_id, now=now)
    session.commit()
    session.refresh(run)
    session.refresh(member)
    return Resent(
        run_id=run_id,
        service_guid=svc.guid,
        images=len(rows),
        outcomes=counts,
        resent_total=member.resent,
        run_state=run.state,
    )


def _keep_history(
    conn: Connection, *, run_id: int, run_service_id: int, rows: Sequence[Any], now: datetime
) -> None:
    """Copy each result to `earlier_results`, then clear it: the item is pending again."""
    ids = [row.id for row in rows]
    conn.execute(
        EARLIER_RESULTS.insert(),
        [
            {
                "run_id": run_id,
                "run_service_id": run_service_id,
                "work_item_id": row.id,
                **{name: getattr(row, name) for name in _KEPT},
                "resent_at": now,
            }
            for row in rows
        ],
    )
    lifecycle.items.reopen(conn, item_ids=ids, cleared=_CLEARED)


def _take_back(conn: Connection, *, run_service_id: int, rows: Sequence[Any]) -> None:
    """Remove the results from the run service's live scores, and for a split run from
    each part's, locked in the workers' order (`live_scores`, then its parts). Every run
    service has them (migration 0013 for runs from before live scores)."""
    stored = conn.execute(
        select(LIVE_SCORES).where(LIVE_SCORES.c.run_service_id == run_service_id).with_for_update()
    ).first()
    if stored is None:
        return
    tally = _without(conn, stored, rows=rows, run_service_id=run_service_id, part=None)
    lifecycle.live.replace(conn, run_service_id=run_service_id, tally=tally)
    split = run_split(conn, run_service_id=run_service_id)
    if split is None:
        return
    parts = conn.execute(
        select(LIVE_SCORE_PARTS)
        .where(LIVE_SCORE_PARTS.c.run_service_id == run_service_id)
        .order_by(LIVE_SCORE_PARTS.c.part)
        .with_for_update()
    ).all()
    for part_row in parts:
        part = (split, part_row.part)
        mine = [row for row in rows if split.part_of(row.image_id) == part_row.part]
        tally = _without(conn, part_row, rows=mine, run_service_id=run_service_id, part=part)
        lifecycle.live.replace_part(
            conn, run_service_id=run_service_id, part=part_row.part, tally=tally
        )


def _without(
    conn: Connection,
    stored: Any,
    *,
    rows: Sequence[Any],
    run_service_id: int,
    part: tuple[Split, str] | None,
) -> LiveTally:
    """The stored live row's tally less `rows`' results."""
    tally = LiveTally.of_columns(stored._mapping)
    try:
        for row in rows:
            tally.remove(outcome=row.outcome, truth=[str(t) for t in row.truth or ()])
    except ValueError:
        # Results recorded unsent before live scores counted them (an older hub): the
        # row never held them; it is counted afresh from the items still recorded.
        tally = _recount(conn, run_service_id=run_service_id, part=part)
    return tally


@dataclass(frozen=True, slots=True)
class EarlierRow:
    """One earlier result of an image the organizer had sent again."""

    key: str
    outcome: str
    attempts: int
    latency_ms: float | None
    http_status: int | None
    request_id: str | None
    detail: str | None
    finished_at: datetime | None
    resent_at: datetime


def earlier_results(session: Session, *, run_id: int, service_guid: str) -> list[EarlierRow]:
    """The history of the service's re-sent images in the run, oldest re-send first.
    Rows carry dataset keys: for the organizer. Raises NotFound as `resend_items`."""
    if session.get(Run, run_id) is None:
        raise NotFound(f"no run {run_id}")
    svc = get_service(session, guid=service_guid)
    member = session.scalar(
        select(RunService.id).where(RunService.run_id == run_id, RunService.service_id == svc.id)
    )
    if member is None:
        raise NotFound(f"service {svc.guid} takes no part in run {run_id}")
    rows = session.execute(
        select(EarlierResult, DatasetImage.key)
        .join(WorkItem, WorkItem.id == EarlierResult.work_item_id)
        .join(DatasetImage, DatasetImage.id == WorkItem.image_id)
        .where(EarlierResult.run_service_id == member)
        .order_by(EarlierResult.id)
    ).all()
    return [
        EarlierRow(
            key=key,
            outcome=found.outcome,
            attempts=found.attempts,
            latency_ms=found.latency_ms,
            http_status=found.http_status,
            request_id=found.request_id,
            detail=found.detail,
            finished_at=found.finished_at,
            resent_at=found.resent_at,
        )
        for found, key in rows
    ]


def _recount(
    conn: Connection, *, run_service_id: int, part: tuple[Split, str] | None = None
) -> LiveTally:
    """The live tally of a run service's recorded items (with `part`, of those of that
    part of the split), as the workers would have added them (a result never sent adds
    no finish time)."""
    tally = LiveTally()
    for row in done_items(
        conn,
        run_service_id=run_service_id,
        columns=[
            WORK_ITEMS.c.image_id,
            WORK_ITEMS.c.outcome,
            WORK_ITEMS.c.tags,
            WORK_ITEMS.c.latency_ms,
            WORK_ITEMS.c.finished_at,
            WORK_ITEMS.c.request_id,
            IMAGES.c.truth,
        ],
    ):
        if part is not None and part[0].part_of(row.image_id) != part[1]:
            continue
        tally.add(
            outcome=row.outcome,
            tags=row.tags,
            truth=[str(t) for t in row.truth or ()],
            latency_ms=row.latency_ms,
            finished_at=row.finished_at if row.request_id is not None else None,
        )
    return tally

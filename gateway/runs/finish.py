"""Scores and verdicts of run services (the end of their run: `gateway.runs.lifecycle`).

A run service is scored by streaming its recorded items, joined with their images' true
tags, through a `ServiceScorer` one page at a time (keyset pages on the claim index), so
memory stays flat however large the dataset. When none of its items is left to send it
gets its scores and its status: a dry run passes a service whose every image ended `ok`;
an evaluation passes a service that finished unless no image at all ended `ok`.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, func, select

from gateway.errors import OUTCOMES, Outcome
from gateway.runs import lifecycle
from gateway.runs.models import (
    IMAGES,
    OPEN_STATUSES,
    RUN_SERVICES,
    RUNS,
    UNRECORDED_STATES,
    WORK_ITEMS,
    ItemState,
    Part,
    Phase,
    ServiceStatus,
)
from gateway.scoring.metrics import ServiceScorer
from gateway.scoring.split import Split

PAGE = 1000
FIRST_ERRORS = 3
_DETAIL_CHARS = 200


@dataclass(frozen=True, slots=True)
class Verdict:
    status: ServiceStatus
    reason: str | None
    scores: dict[str, Any]
    # A split run's scores of each part, {"public": ..., "private": ...}; else None.
    part_scores: dict[str, dict[str, Any]] | None = None

    def values(self) -> dict[str, Any]:
        """The run service's columns this verdict sets."""
        return {
            "status": self.status,
            "reason": self.reason,
            "scores": self.scores,
            "part_scores": self.part_scores,
        }


def keyset_pages(conn: Connection, query: Select[Any]) -> Iterator[Row[Any]]:
    """The rows of `query` (over work items, selecting their `seq` first) in `seq` order,
    fetched a page at a time: keyset pages on the claim index, so memory stays flat and
    no page costs more than the first."""
    last_seq = -1
    while True:
        page = conn.execute(
            query.where(WORK_ITEMS.c.seq > last_seq).order_by(WORK_ITEMS.c.seq).limit(PAGE)
        ).all()
        yield from page
        if len(page) < PAGE:
            return
        last_seq = page[-1].seq


def done_items(conn: Connection, *, run_service_id: int, columns: list[Any]) -> Iterator[Row[Any]]:
    """The recorded items of a run service in `seq` order, joined with their images,
    fetched a page at a time."""
    return keyset_pages(
        conn,
        select(WORK_ITEMS.c.seq, *columns)
        .join(IMAGES, IMAGES.c.id == WORK_ITEMS.c.image_id)
        .where(
            WORK_ITEMS.c.run_service_id == run_service_id,
            WORK_ITEMS.c.state == ItemState.DONE,
        ),
    )


def service_scores(conn: Connection, *, run_service_id: int) -> dict[str, Any]:
    """The leaderboard figures of a run service over the items recorded so far.

    Throughput is over the time from the first request sent to the last answer.
    """
    scorer = ServiceScorer()
    for row in done_items(
        conn,
        run_service_id=run_service_id,
        columns=[
            WORK_ITEMS.c.outcome,
            WORK_ITEMS.c.tags,
            WORK_ITEMS.c.latency_ms,
            IMAGES.c.truth,
        ],
    ):
        tags = [(str(tag), float(score)) for tag, score in row.tags or ()]
        scorer.add(outcome=row.outcome, tags=tags, truth=row.truth or [], latency_ms=row.latency_ms)
    return scorer.result(elapsed_s=elapsed_s(conn, run_service_id=run_service_id))


def run_split(conn: Connection, *, run_service_id: int) -> Split | None:
    """The public/private split of the run service's run, if it is split."""
    row = conn.execute(
        select(RUNS.c.split_seed, RUNS.c.public_fraction)
        .join(RUN_SERVICES, RUN_SERVICES.c.run_id == RUNS.c.id)
        .where(RUN_SERVICES.c.id == run_service_id)
    ).first()
    return Split.of(row.split_seed, row.public_fraction) if row is not None else None


def part_scores(
    conn: Connection, *, run_service_id: int, split: Split
) -> dict[str, dict[str, Any]]:
    """The leaderboard figures of each part of a split run service's recorded items: the
    same scorer as `service_scores`, fed the items of one part each."""
    scorers = {Part.PUBLIC.value: ServiceScorer(), Part.PRIVATE.value: ServiceScorer()}
    for row in done_items(
        conn,
        run_service_id=run_service_id,
        columns=[
            WORK_ITEMS.c.image_id,
            WORK_ITEMS.c.outcome,
            WORK_ITEMS.c.tags,
            WORK_ITEMS.c.latency_ms,
            IMAGES.c.truth,
        ],
    ):
        tags = [(str(tag), float(score)) for tag, score in row.tags or ()]
        scorers[split.part_of(row.image_id)].add(
            outcome=row.outcome, tags=tags, truth=row.truth or [], latency_ms=row.latency_ms
        )
    elapsed = elapsed_s(conn, run_service_id=run_service_id)
    return {part: scorer.result(elapsed_s=elapsed) for part, scorer in scorers.items()}


def elapsed_s(conn: Connection, *, run_service_id: int) -> float | None:
    """Seconds from the first request sent (the first answer less its latency) to the
    last answer recorded; None before two answers."""
    done = (WORK_ITEMS.c.run_service_id == run_service_id, WORK_ITEMS.c.state == ItemState.DONE)
    last = conn.execute(select(func.max(WORK_ITEMS.c.finished_at)).where(*done)).scalar()
    first = conn.execute(
        select(WORK_ITEMS.c.finished_at, WORK_ITEMS.c.latency_ms)
        .where(*done)
        .order_by(WORK_ITEMS.c.finished_at)
        .limit(1)
    ).first()
    if last is None or first is None or first.finished_at is None:
        return None
    sent = first.finished_at - timedelta(milliseconds=first.latency_ms or 0.0)
    seconds = (last - sent).total_seconds()
    return seconds if seconds > 0 else None


def first_errors(conn: Connection, *, run_service_id: int, limit: int = FIRST_ERRORS) -> list[str]:
    """The first failed requests of a run service, as the team may see them: request id,
    outcome, status and detail (never the image's key or label)."""
    rows = conn.execute(
        select(
            WORK_ITEMS.c.request_id,
            WORK_ITEMS.c.outcome,
            WORK_ITEMS.c.http_status,
            WORK_ITEMS.c.detail,
        )
        .where(
            WORK_ITEMS.c.run_service_id == run_service_id,
            WORK_ITEMS.c.state == ItemState.DONE,
            WORK_ITEMS.c.outcome != Outcome.OK.value,
        )
        .order_by(WORK_ITEMS.c.seq)
        .limit(limit)
    ).all()
    errors = []
    for row in rows:
        status = f" (HTTP {row.http_status})" if row.outcome == Outcome.HTTP_ERROR else ""
        detail = (row.detail or "").strip()
        if len(detail) > _DETAIL_CHARS:
            detail = detail[: _DETAIL_CHARS - 1] + "…"
        errors.append(f"request {row.request_id}: {row.outcome}{status}: {detail}")
    return errors


def judge(
    conn: Connection,
    *,
    run_service_id: int,
    phase: str,
    scores: dict[str, Any] | None = None,
) -> Verdict:
    """Scores, status and (for a failure) the reason of a run service whose items are done.
    `scores` may come from a worker that scored every item as it was recorded."""
    if scores is None:
        scores = service_scores(conn, run_service_id=run_service_id)
    outcomes: dict[str, int] = scores["outcomes"]
    images = int(scores["images"])
    ok = outcomes.get(Outcome.OK.value, 0)
    counts = ", ".join(f"{name} {outcomes.get(name, 0)}" for name in OUTCOMES)
    passed = ok == images if phase == Phase.DRYRUN else ok > 0 or images == 0
    split = run_split(conn, run_service_id=run_service_id)
    parts = part_scores(conn, run_service_id=run_service_id, split=split) if split else None
    if passed:
        return Verdict(ServiceStatus.PASSED, None, scores, parts)
    if phase == Phase.DRYRUN:
        head = f"{images - ok} of {images} images did not end ok ({counts})"
    else:
        head = f"no image ended ok ({counts})"
    errors = first_errors(conn, run_service_id=run_service_id)
    reason = head + (". First errors: " + "; ".join(errors) if errors else "")
    return Verdict(ServiceStatus.FAILED, reason, scores, parts)


def unfinished(conn: Connection, *, run_service_id: int) -> int:
    """How many items of a run service are not recorded yet."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(WORK_ITEMS)
            .where(
                WORK_ITEMS.c.run_service_id == run_service_id,
                WORK_ITEMS.c.state.in_(UNRECORDED_STATES),
            )
        ).scalar_one()
    )


def finish_service(
    conn: Connection,
    *,
    run_service_id: int,
    phase: str,
    scorer: ServiceScorer | None = None,
    elapsed: float | None = None,
) -> bool:
    """Score and close a run service if every item is recorded; True if it is (now) final.

    `scorer` is used when it holds every item of the run service (a worker that recorded
    them all scores as it goes); otherwise the recorded items are streamed. Two workers
    may both judge it; the conditional update lets one write.
    """
    # Read first: a re-send (gateway.runs.resend) committed after this read bumps it, and
    # the conditional update below then leaves the service open for the items it re-sent.
    resent = conn.execute(
        select(RUN_SERVICES.c.resent).where(RUN_SERVICES.c.id == run_service_id)
    ).scalar_one()
    if unfinished(conn, run_service_id=run_service_id):
        return False
    scores = None
    # A lane's scorer saw the results a re-send took back: only trusted without one.
    if scorer is not None and not resent and scorer.images == _items(conn, run_service_id):
        scores = scorer.result(elapsed_s=elapsed if elapsed and elapsed > 0 else None)
    verdict = judge(conn, run_service_id=run_service_id, phase=phase, scores=scores)
    closed = lifecycle.services.close(
        conn, run_service_id=run_service_id, verdict=verdict.values(), resent=resent
    )
    if not closed:  # closed by another worker, or re-sent meanwhile: final only if closed
        status = conn.execute(
            select(RUN_SERVICES.c.status).where(RUN_SERVICES.c.id == run_service_id)
        ).scalar_one()
        return status not in OPEN_STATUSES
    return True


def _items(conn: Connection, run_service_id: int) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(WORK_ITEMS)
            .where(WORK_ITEMS.c.run_service_id == run_service_id)
        ).scalar_one()
    )

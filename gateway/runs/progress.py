"""What a run looks like while it goes and once it is over: per-service progress, the
leaderboard and the per-image results. Read-only; every query is bounded or streamed.
"""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from gateway.datasets.models import Dataset
from gateway.db import utcnow
from gateway.errors import OUTCOMES, NotFound
from gateway.registry.models import Provider, Service
from gateway.registry.service import get_service
from gateway.runs.claims import DOWN_STATUS, FINAL_STATUSES, IMAGES, WORK_ITEMS
from gateway.runs.finish import done_items, service_scores
from gateway.runs.models import Run, RunService, WorkItem
from gateway.runs.schemas import ServiceStatus
from gateway.scoring.leaderboard import rank_rows
from gateway.scoring.metrics import PERCENTILES, percentile, true_rank

# The latest answers that live latency and throughput figures are computed from.
SAMPLE = 2000


@dataclass
class ServiceProgress:
    service_guid: str
    service_name: str
    provider_guid: str
    provider_name: str
    provider_id: int
    status: ServiceStatus
    reason: str | None
    done: int
    total: int
    outcomes: dict[str, int]
    images_per_s: float | None
    latency_ms: dict[str, float | None]
    eta_s: float | None


@dataclass
class RunProgress:
    run: Run
    dataset_name: str
    services: list[ServiceProgress] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One image's result for one service (the results export, SPEC §3)."""

    key: str
    outcome: str | None
    attempts: int
    latency_ms: float | None
    raw: str | None
    tags: list[dict[str, Any]]
    true_rank: int | None
    # Only in the organizer's whole-run export (`iter_run_results`).
    service_guid: str | None = None
    labels: list[str] | None = None
    detail: str | None = None
    request_id: str | None = None
    finished_at: datetime | None = None


def _get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    return run


def run_members(session: Session, run_id: int, provider_id: int | None = None) -> list[Row[Any]]:
    """The run's services in run order with their GUIDs and names (only `provider_id`'s
    if given): id (the run service's), status, reason, scores, service_guid,
    service_name, provider_guid, provider_name, provider_id."""
    query = (
        select(
            RunService.id,
            RunService.status,
            RunService.reason,
            RunService.scores,
            Service.guid.label("service_guid"),
            Service.name.label("service_name"),
            Provider.guid.label("provider_guid"),
            Provider.name.label("provider_name"),
            Provider.id.label("provider_id"),
        )
        .join(Service, Service.id == RunService.service_id)
        .join(Provider, Provider.id == Service.provider_id)
        .where(RunService.run_id == run_id)
        .order_by(RunService.position)
    )
    if provider_id is not None:
        query = query.where(Provider.id == provider_id)
    return list(session.execute(query).all())


def run_progress(session: Session, *, run_id: int, provider_id: int | None = None) -> RunProgress:
    """The run with each service's progress (only `provider_id`'s services if given):
    counts per outcome, throughput, latency percentiles of recent `ok` answers and ETA.

    Raises NotFound.
    """
    run = _get_run(session, run_id)
    dataset_name = session.scalar(select(Dataset.name).where(Dataset.id == run.dataset_id)) or ""
    members = run_members(session, run_id, provider_id)
    progress = RunProgress(run=run, dataset_name=dataset_name)
    if not members:
        return progress
    totals: dict[int, int] = defaultdict(int)
    outcomes: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    query = (
        select(WorkItem.run_service_id, WorkItem.outcome, func.count())
        .where(WorkItem.run_id == run_id)
        .group_by(WorkItem.run_service_id, WorkItem.outcome)
    )
    if provider_id is not None:
        query = query.where(WorkItem.run_service_id.in_([m.id for m in members]))
    for run_service_id, outcome, count in session.execute(query):
        totals[run_service_id] += count
        if outcome is not None:
            outcomes[run_service_id][outcome] = outcomes[run_service_id].get(outcome, 0) + count
    for m in members:
        counts = outcomes[m.id]
        done = sum(counts.values())
        total = totals[m.id]
        if m.status in FINAL_STATUSES and m.scores:
            latency = {k: m.scores["latency_ms"].get(k) for k, _ in PERCENTILES}
            rate: float | None = m.scores.get("images_per_s")
            eta: float | None = 0.0
        else:
            latency, rate = _recent(session, m.id, running=run.state == "running")
            remaining = total - done
            sending = run.state == "running" and m.status != DOWN_STATUS
            eta = remaining / rate if rate and sending else None
        progress.services.append(
            ServiceProgress(
                service_guid=m.service_guid,
                service_name=m.service_name,
                provider_guid=m.provider_guid,
                provider_name=m.provider_name,
                provider_id=m.provider_id,
                status=m.status,
                reason=m.reason,
                done=done,
                total=total,
                outcomes=counts,
                images_per_s=rate,
                latency_ms=latency,
                eta_s=eta,
            )
        )
    return progress


def _recent(
    session: Session, run_service_id: int, *, running: bool
) -> tuple[dict[str, float | None], float | None]:
    """Latency percentiles of the `ok` answers and the throughput over the latest SAMPLE
    recorded items (read through the claim index, newest `seq` first)."""
    rows = session.execute(
        select(WorkItem.outcome, WorkItem.latency_ms, WorkItem.finished_at)
        .where(WorkItem.run_service_id == run_service_id, WorkItem.state == "done")
        .order_by(WorkItem.seq.desc())
        .limit(SAMPLE)
    ).all()
    ok = [r.latency_ms for r in rows if r.outcome == "ok" and r.latency_ms is not None]
    latency: dict[str, float | None] = {
        name: (percentile(ok, p) if ok else None) for name, p in PERCENTILES
    }
    finished = [r.finished_at for r in rows if r.finished_at is not None]
    rate = None
    if finished:
        end = utcnow() if running else max(finished)
        span = (end - min(finished)).total_seconds()
        count = len(finished) if running else len(finished) - 1
        rate = count / span if span > 0 and count > 0 else None
    return latency, rate


def leaderboard(session: Session, *, run_id: int) -> list[dict[str, Any]]:
    """The run's services ranked by its metric (SPEC §3 rows, best first): stored scores
    of finished services, live scores (streamed) of the others. Raises NotFound."""
    run = _get_run(session, run_id)
    rows = []
    for m in run_members(session, run_id):
        if m.status in FINAL_STATUSES and m.scores:
            scores = m.scores
        else:
            scores = service_scores(session.connection(), run_service_id=m.id)
        rows.append(
            {
                "provider_guid": m.provider_guid,
                "provider_name": m.provider_name,
                "service_guid": m.service_guid,
                "service_name": m.service_name,
                "status": m.status,
                **scores,
            }
        )
    return rank_rows(rows, metric=run.metric)


def iter_results(session: Session, *, run_id: int, service_guid: str) -> Iterator[ResultRow]:
    """One row per recorded image of a service in the run, in the run's order, streamed.

    Rows carry dataset keys: callers decide who may see them. Raises NotFound for an
    unknown run, or a service that is unknown or not in the run (checked at once).
    """
    _get_run(session, run_id)
    svc = get_service(session, guid=service_guid)
    run_service_id = session.scalar(
        select(RunService.id).where(RunService.run_id == run_id, RunService.service_id == svc.id)
    )
    if run_service_id is None:
        raise NotFound(f"service {svc.guid} takes no part in run {run_id}")
    return _result_rows(session, run_service_id)


def iter_run_results(session: Session, *, run_id: int) -> Iterator[ResultRow]:
    """Every recorded image of every service in the run, service by service in run
    order, with what only the organizer sees (labels, detail, request id, time); streamed.

    Raises NotFound for an unknown run (checked at once).
    """
    _get_run(session, run_id)
    members = run_members(session, run_id)

    def rows() -> Iterator[ResultRow]:
        for m in members:
            yield from _result_rows(session, m.id, service_guid=m.service_guid)

    return rows()


def _result_rows(
    session: Session, run_service_id: int, *, service_guid: str | None = None
) -> Iterator[ResultRow]:
    """The rows of a run service; with `service_guid`, the organizer's full rows."""
    full = service_guid is not None
    for row in done_items(
        session.connection(),
        run_service_id=run_service_id,
        columns=[
            IMAGES.c.key,
            IMAGES.c.truth,
            WORK_ITEMS.c.outcome,
            WORK_ITEMS.c.attempts,
            WORK_ITEMS.c.latency_ms,
            WORK_ITEMS.c.raw,
            WORK_ITEMS.c.tags,
            WORK_ITEMS.c.detail,
            WORK_ITEMS.c.request_id,
            WORK_ITEMS.c.finished_at,
        ],
    ):
        ranked = [(str(tag), float(score)) for tag, score in row.tags or ()]
        yield ResultRow(
            key=row.key,
            outcome=row.outcome,
            attempts=row.attempts,
            latency_ms=row.latency_ms,
            raw=row.raw,
            tags=[{"tag": tag, "score": score} for tag, score in ranked],
            true_rank=true_rank([tag for tag, _ in ranked], row.truth or []),
            service_guid=service_guid,
            labels=[str(t) for t in row.truth or ()] if full else None,
            detail=row.detail if full else None,
            request_id=row.request_id if full else None,
            finished_at=row.finished_at if full else None,
        )

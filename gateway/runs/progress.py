"""What a run looks like while it goes and once it is over: per-service progress, the
leaderboard and the per-image results. Read-only; every query is bounded or streamed.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from gateway.errors import OUTCOMES, NotFound
from gateway.registry.service import get_service
from gateway.runs import live_scores
from gateway.runs.finish import done_items
from gateway.runs.models import (
    DATASETS,
    FINAL_STATUSES,
    IMAGES,
    PROVIDERS,
    RUN_SERVICES,
    RUNS,
    SERVICES,
    STOPPED_RUN_STATES,
    WORK_ITEMS,
    RunService,
    RunState,
    ServiceStatus,
)
from gateway.runs.schemas import ShownStatus
from gateway.scoring.leaderboard import rank_rows
from gateway.scoring.live import LiveTally
from gateway.scoring.metrics import PERCENTILES
from gateway.scoring.ranking import true_rank
from gateway.scoring.split import Split


@dataclass
class ServiceProgress:
    service_guid: str
    service_name: str
    provider_guid: str
    provider_name: str
    provider_id: int
    status: ShownStatus
    reason: str | None
    done: int
    total: int
    outcomes: dict[str, int]
    images_per_s: float | None
    latency_ms: dict[str, float | None]
    eta_s: float | None
    resent: int = 0


@dataclass
class RunProgress:
    run: Row[Any]  # `read_run`
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


_RUN = select(RUNS).where(RUNS.c.id == bindparam("run_id"))


def read_run(session: Session, run_id: int) -> Row[Any]:
    """The run's row, its columns named as `Run`'s attributes: read without loading the
    entity, which cost the polled progress and leaderboard reads a fifth of their CPU.
    Raises NotFound."""
    run = session.connection().execute(_RUN, {"run_id": run_id}).one_or_none()
    if run is None:
        raise NotFound(f"no run {run_id}")
    return run


# Built once: a statement built per call cost more CPU than running it (its clauses
# coerced, its cache key generated), and the run's progress and leaderboard are polled.
_MEMBERS = (
    select(
        RUN_SERVICES.c.id,
        RUN_SERVICES.c.status,
        RUN_SERVICES.c.reason,
        RUN_SERVICES.c.scores,
        RUN_SERVICES.c.resent,
        RUN_SERVICES.c.part_scores,
        SERVICES.c.guid.label("service_guid"),
        SERVICES.c.name.label("service_name"),
        PROVIDERS.c.guid.label("provider_guid"),
        PROVIDERS.c.name.label("provider_name"),
        PROVIDERS.c.id.label("provider_id"),
    )
    .join(SERVICES, SERVICES.c.id == RUN_SERVICES.c.service_id)
    .join(PROVIDERS, PROVIDERS.c.id == SERVICES.c.provider_id)
    .where(RUN_SERVICES.c.run_id == bindparam("run_id"))
    .order_by(RUN_SERVICES.c.position)
)
_MEMBERS_OF_ID = _MEMBERS.where(PROVIDERS.c.id == bindparam("provider_id"))
_MEMBERS_OF_GUID = _MEMBERS.where(PROVIDERS.c.guid == bindparam("provider_guid"))
_MEMBERS_OF_BOTH = _MEMBERS_OF_ID.where(PROVIDERS.c.guid == bindparam("provider_guid"))
_DATASET_NAME = select(DATASETS.c.name).where(DATASETS.c.id == bindparam("dataset_id"))


def run_members(
    session: Session,
    run_id: int,
    provider_id: int | None = None,
    *,
    provider_guid: str | None = None,
) -> list[Row[Any]]:
    """The run's services in run order with their GUIDs and names (only a provider's if
    `provider_id` or `provider_guid` is given): id (the run service's), status, reason,
    scores, part_scores, resent, service_guid, service_name, provider_guid, provider_name,
    provider_id."""
    params = {"run_id": run_id, "provider_id": provider_id, "provider_guid": provider_guid}
    if provider_id is None:
        query = _MEMBERS if provider_guid is None else _MEMBERS_OF_GUID
    else:
        query = _MEMBERS_OF_ID if provider_guid is None else _MEMBERS_OF_BOTH
    return cast(list[Row[Any]], session.connection().execute(query, params).all())


def _live_rows(
    session: Session, run_id: int, ids: list[int], *, whole: bool
) -> dict[int, live_scores.LiveRow]:
    """The live scores of the run services `ids`: those of the `whole` run read by run."""
    if whole:
        return live_scores.read_run_rows(session.connection(), run_id=run_id)
    return live_scores.read_rows(session.connection(), run_service_ids=ids)


def shown_status(run_state: str, status: str) -> ShownStatus:
    """A run service's status as the API shows it: a service of a cancelled (or failed)
    run that was not passed or failed is `cancelled`, never `ongoing` (resume continues
    it from its stored status)."""
    if run_state in STOPPED_RUN_STATES and status not in FINAL_STATUSES:
        return "cancelled"
    return cast(ShownStatus, status)


def run_progress(
    session: Session, *, run_id: int, provider_id: int | None = None, part: str | None = None
) -> RunProgress:
    """The run with each service's progress (only `provider_id`'s services if given):
    counts per outcome, throughput, latency percentiles and ETA, read from the live scores
    (one row per service, whatever the number of items). With `part` ("public") and a
    split run, the figures are of that part's images only (its own live scores and stored
    rescore): a team's view of a challenge submission before publication.

    Raises NotFound.
    """
    run = read_run(session, run_id)
    dataset_name = session.connection().scalar(_DATASET_NAME, {"dataset_id": run.dataset_id}) or ""
    members = run_members(session, run_id, provider_id)
    progress = RunProgress(run=run, dataset_name=dataset_name)
    if not members:
        return progress
    ids = [m.id for m in members]
    parted = part is not None and Split.of(run.split_seed, run.public_fraction) is not None
    if part is not None and parted:
        live = live_scores.read_part_rows(session.connection(), run_service_ids=ids, part=part)
    else:
        live = _live_rows(session, run_id, ids, whole=provider_id is None)
    sending = run.state == RunState.RUNNING
    for m in members:
        final = m.status in FINAL_STATUSES and bool(m.scores)
        stored = live.get(m.id)
        if stored is None:  # no (part's) scores kept: nothing to show of it
            done, total, rate, eta = 0, 0, None, None
            counts = dict.fromkeys(OUTCOMES, 0)
            latency: dict[str, float | None] = dict.fromkeys((k for k, _ in PERCENTILES), None)
        else:
            total = stored.images_total
            if parted:
                final = final and bool(m.part_scores)
                figures = m.part_scores[part] if final else stored.tally.result()
            else:
                figures = m.scores if final else stored.tally.result()
            counts = {name: figures["outcomes"].get(name, 0) for name in OUTCOMES}
            done = int(figures["images"])
            latency = {k: figures["latency_ms"].get(k) for k, _ in PERCENTILES}
            rate = figures.get("images_per_s")
            remaining = total - done
            eta = 0.0 if final else None
            if not final and rate and sending and m.status != ServiceStatus.DOWN:
                eta = remaining / rate
        progress.services.append(
            ServiceProgress(
                service_guid=m.service_guid,
                service_name=m.service_name,
                provider_guid=m.provider_guid,
                provider_name=m.provider_name,
                provider_id=m.provider_id,
                status=shown_status(run.state, m.status),
                reason=m.reason,
                done=done,
                total=total,
                outcomes=counts,
                images_per_s=rate,
                latency_ms=latency,
                eta_s=eta,
                resent=m.resent,
            )
        )
    return progress


def leaderboard(
    session: Session, *, run_id: int, provider_guid: str | None = None
) -> list[dict[str, Any]]:
    """The run's services ranked by its metric (SPEC §3 rows, best first); only
    `provider_guid`'s services (ranked among themselves) if given. Passed and failed
    services show their stored full rescore; the others their live scores, marked
    `provisional` (coverage and µAP null until then, gateway.scoring.live).

    Raises NotFound.
    """
    run = read_run(session, run_id)
    members = run_members(session, run_id, provider_guid=provider_guid)
    ids = [m.id for m in members]
    live = _live_rows(session, run_id, ids, whole=provider_guid is None)
    rows = []
    for m in members:
        final = m.status in FINAL_STATUSES and bool(m.scores)
        # Every run service has live scores: created with its run, or by migration 0013
        # for a run from before them.
        stored = live.get(m.id) or live_scores.LiveRow(m.id, 0, LiveTally())
        scores = m.scores if final else stored.tally.result()
        total = stored.images_total
        rows.append(
            {
                "provider_guid": m.provider_guid,
                "provider_name": m.provider_name,
                "service_guid": m.service_guid,
                "service_name": m.service_name,
                "status": shown_status(run.state, m.status),
                "provisional": m.status not in FINAL_STATUSES,
                "images_total": total,
                **scores,
                "resent": m.resent,
            }
        )
    return rank_rows(rows, metric=run.metric, uncertainty_ms=run.timing_uncertainty_ms)


def iter_results(
    session: Session,
    *,
    run_id: int,
    service_guid: str,
    keep_image: Callable[[int], bool] | None = None,
) -> Iterator[ResultRow]:
    """One row per recorded image of a service in the run, in the run's order, streamed;
    with `keep_image`, only the images (by id) it keeps.

    Rows carry dataset keys: callers decide who may see them. Raises NotFound for an
    unknown run, or a service that is unknown or not in the run (checked at once).
    """
    read_run(session, run_id)
    svc = get_service(session, guid=service_guid)
    run_service_id = session.scalar(
        select(RunService.id).where(RunService.run_id == run_id, RunService.service_id == svc.id)
    )
    if run_service_id is None:
        raise NotFound(f"service {svc.guid} takes no part in run {run_id}")
    return _result_rows(session, run_service_id, keep_image=keep_image)


def iter_run_results(session: Session, *, run_id: int) -> Iterator[ResultRow]:
    """Every recorded image of every service in the run, service by service in run
    order, with what only the organizer sees (labels, detail, request id, time); streamed.

    Raises NotFound for an unknown run (checked at once).
    """
    read_run(session, run_id)
    members = run_members(session, run_id)

    def rows() -> Iterator[ResultRow]:
        for m in members:
            yield from _result_rows(session, m.id, service_guid=m.service_guid)

    return rows()


def _result_rows(
    session: Session,
    run_service_id: int,
    *,
    service_guid: str | None = None,
    keep_image: Callable[[int], bool] | None = None,
) -> Iterator[ResultRow]:
    """The rows of a run service; with `service_guid`, the organizer's full rows."""
    full = service_guid is not None
    for row in done_items(
        session.connection(),
        run_service_id=run_service_id,
        columns=[
            IMAGES.c.id.label("image_id"),
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
        if keep_image is not None and not keep_image(row.image_id):
            continue
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

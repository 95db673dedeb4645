"""`/api/v1/runs`: start, watch, cancel, resume, publish and re-send runs (leaderboards, results
and the figures drawn from them: `gateway.runs.result_routes`).

Who sees what:
- the organizer (admin) sees and does everything;
- a provider may start dry runs of its own services on datasets open to teams, within
  its quota (`gateway.runs.team`); `started_by` names who started a run (null: the
  organizer);
- a provider sees the runs its services take part in, with only its own service rows;
  a dry run's leaderboard shows it its own row, an evaluation's leaderboard only once
  the organizer publishes it; it may download its own results of dry runs only (the
  evaluation set is hidden);
- anyone else gets 401.
Ground truth never leaves through these routes to a team, only the rank of the true
tag; the organizer's whole-run export carries it (`labels`).

The timeline follows the leaderboard's rules; failures and per-class figures the
results' (a team: its own, of dry runs only).
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from gateway.auth import Principal
from gateway.challenges.visibility import hides_private_part
from gateway.deps import (
    AdminDep,
    CallerDep,
    HubStateDep,
    RowIdPath,
    SessionDep,
    json_response,
    read_only,
)
from gateway.errors import Forbidden
from gateway.openapi import errors
from gateway.registry.models import Provider
from gateway.runs import resend, service
from gateway.runs.models import Phase
from gateway.runs.schemas import (
    EarlierResultRead,
    LatencyRead,
    PublishUpdate,
    ResendCreate,
    ResendRead,
    RunCreate,
    RunRead,
    RunServiceRead,
)
from gateway.runs.team import create_team_dryrun

router = APIRouter(prefix="/runs", tags=["runs"])


def run_read(session: Session, run_id: int, principal: Principal) -> RunRead:
    """The run shape; a provider's view holds only its own service rows."""
    provider_id = None if principal.is_admin else principal.provider_id
    part: Literal["public"] | None = None
    if not principal.is_admin and hides_private_part(
        session, run=service.get_run(session, run_id=run_id)
    ):
        part = "public"
    progress = service.run_progress(session, run_id=run_id, provider_id=provider_id, part=part)
    run = progress.run
    starter = session.get(Provider, run.started_by_id) if run.started_by_id else None
    return RunRead(
        id=run.id,
        dataset=progress.dataset_name,
        dataset_id=run.dataset_id,
        phase=run.phase,
        metric=run.metric,
        state=run.state,
        published=run.published,
        timeout_s=run.timeout_s,
        max_attempts=run.max_attempts,
        error=run.error,
        started_by=starter.guid if starter else None,
        started_by_name=starter.name if starter else None,
        timing_uncertainty_ms=run.timing_uncertainty_ms,
        start_at=run.start_at,
        deadline=run.deadline,
        stopped_at_deadline=run.stopped_at_deadline,
        part=part,
        services=[
            RunServiceRead(
                service_guid=s.service_guid,
                provider_guid=s.provider_guid,
                service_name=s.service_name,
                provider_name=s.provider_name,
                status=s.status,
                reason=s.reason,
                done=s.done,
                total=s.total,
                outcomes=dict(s.outcomes),
                images_per_s=s.images_per_s,
                latency_ms=LatencyRead.model_validate(s.latency_ms),
                eta_s=s.eta_s,
                resent=s.resent,
            )
            for s in progress.services
        ],
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def visible_run(session: Session, run_id: int, principal: Principal) -> RunRead:
    """The run as `principal` may see it; 403 for a provider taking no part in it."""
    view = run_read(session, run_id, principal)
    if not principal.is_admin and not view.services:
        raise Forbidden(f"run {run_id}: your team takes no part in this run")
    return view


@router.post("", status_code=201, responses=errors(400, 401, 403, 404, 413, 422, 429))
def start_run(
    body: RunCreate, session: SessionDep, state: HubStateDep, principal: CallerDep
) -> RunRead:
    """Queue a run of `dataset` against `services` (all enabled services by default).

    A provider may start a dry run of its own services (all its enabled ones by default)
    on a dataset open to teams, within its quota: 429 with Retry-After when it is used up.
    """
    if not principal.is_admin:
        assert principal.provider_id is not None  # require_caller: admin or provider
        if body.phase != Phase.DRYRUN.value:
            raise Forbidden("a team may start dry runs only; the organizer starts evaluations")
        chosen = {
            "concurrency",
            "timeout_s",
            "max_attempts",
            "seed",
            "start_at",
            "deadline",
        } & body.model_fields_set
        if chosen:
            raise Forbidden(
                f"{', '.join(sorted(chosen))}: a team's dry run takes the organizer's "
                "settings; leave them out"
            )
        run = create_team_dryrun(
            session,
            settings=state.settings,
            provider_id=principal.provider_id,
            dataset=body.dataset,
            service_guids=body.services,
            metric=body.metric,
        )
        return run_read(session, run.id, principal)
    run = service.create_run(
        session,
        settings=state.settings,
        dataset=body.dataset,
        phase=body.phase,
        service_guids=body.services,
        metric=body.metric,
        concurrency=body.concurrency,
        timeout_s=body.timeout_s,
        max_attempts=body.max_attempts,
        seed=body.seed,
        start_at=body.start_at,
        deadline=body.deadline,
    )
    return run_read(session, run.id, principal)


@router.get("", responses=errors(401))
def list_runs(session: SessionDep, principal: CallerDep) -> list[RunRead]:
    """Every run for the organizer; for a provider, the runs its services take part in."""
    views = [run_read(session, run.id, principal) for run in service.list_runs(session)]
    return [v for v in views if principal.is_admin or v.services]


_RUN = TypeAdapter(RunRead)


def run_json(session: Session, run_id: int, principal: Principal) -> Response:
    """`GET /runs/{run_id}`'s answer, the session closed (`gateway.runs.polled` too)."""
    with read_only(session):
        return json_response(_RUN, visible_run(session, run_id, principal))


@router.get("/{run_id}", response_model=RunRead, responses=errors(401, 403, 404, 422))
def get_run(run_id: RowIdPath, session: SessionDep, principal: CallerDep) -> Response:
    """State and per-service progress."""
    return run_json(session, run_id, principal)


@router.post("/{run_id}/cancel", responses=errors(401, 403, 404, 409, 422))
def cancel_run(run_id: RowIdPath, session: SessionDep, principal: AdminDep) -> RunRead:
    """Stop sending new requests; what is recorded stays."""
    service.cancel_run(session, run_id=run_id)
    return run_read(session, run_id, principal)


@router.post("/{run_id}/resume", responses=errors(401, 403, 404, 409, 422))
def resume_run(run_id: RowIdPath, session: SessionDep, principal: AdminDep) -> RunRead:
    """Continue a cancelled (or failed) run where it stopped."""
    service.resume_run(session, run_id=run_id)
    return run_read(session, run_id, principal)


@router.post("/{run_id}/publish", responses=errors(400, 401, 403, 404, 409, 413, 422))
def publish_run(
    run_id: RowIdPath, session: SessionDep, principal: AdminDep, body: PublishUpdate | None = None
) -> RunRead:
    """Show the leaderboard to providers (`{"published": false}` hides it again)."""
    published = True if body is None else body.published
    service.set_published(session, run_id=run_id, published=published)
    return run_read(session, run_id, principal)


@router.post("/{run_id}/resend", responses=errors(400, 401, 403, 404, 413, 422))
def resend_items(
    run_id: RowIdPath, body: ResendCreate, session: SessionDep, principal: AdminDep
) -> ResendRead:
    """Send a service's recorded items with the chosen outcomes again (any outcome but
    ok), while the run is open or after it completed: their results are kept as history
    (`GET /runs/{id}/resends`), taken out of the scores, and the run runs again for them."""
    done = resend.resend_items(
        session, run_id=run_id, service_guid=body.service_guid, outcomes=body.outcomes
    )
    return ResendRead(
        run_id=done.run_id,
        service_guid=done.service_guid,
        images=done.images,
        outcomes=done.outcomes,
        resent=done.resent_total,
        run_state=done.run_state,
    )


@router.get("/{run_id}/resends", responses=errors(401, 403, 404, 422))
def resend_history(
    run_id: RowIdPath,
    session: SessionDep,
    principal: AdminDep,
    service_guid: Annotated[
        str, Query(alias="service", max_length=64, description="Service GUID.")
    ],
) -> list[EarlierResultRead]:
    """The earlier results of the service's re-sent images, oldest re-send first."""
    rows = resend.earlier_results(session, run_id=run_id, service_guid=service_guid)
    return [EarlierResultRead.model_validate(row, from_attributes=True) for row in rows]

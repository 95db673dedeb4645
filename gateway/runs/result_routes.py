"""`/api/v1/runs/{id}/...`: what a run produced — the leaderboard, results, failure
groups, per-class figures and the timeline — for whoever may see it (the rules are in
`gateway.runs.routes`' module doc).

A team sees a dry run's leaderboard and timeline as its own rows, an evaluation's only
once it is published; results, failures and per-class figures are its own, of dry runs
only. Ground truth never leaves to a team, only the rank of the true tag.
"""

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth import Principal
from gateway.challenges.visibility import team_run_view
from gateway.deps import CallerDep, RowIdPath, SessionDep, json_response, read_only
from gateway.errors import OUTCOMES, Forbidden, NotFound
from gateway.notify.downtimes import downtimes
from gateway.notify.timeline import timeline_intervals
from gateway.openapi import errors, text_response
from gateway.registry.service import get_service
from gateway.runs import service
from gateway.runs.classes import class_figures
from gateway.runs.exports import (
    CSV_MEDIA,
    batched,
    csv_lines,
    csv_text,
    iso,
    jsonl_lines,
    leaderboard_csv_row,
)
from gateway.runs.failures import failure_groups
from gateway.runs.models import Phase, Run, RunService
from gateway.runs.progress import run_members
from gateway.runs.schemas import (
    LEADERBOARD_COLUMNS,
    RESULT_COLUMNS,
    RUN_RESULT_COLUMNS,
    TIMELINE_COLUMNS,
    ClassRead,
    FailureGroupRead,
    LeaderboardRow,
    ResultFormat,
    TimelineBucket,
    TimelineLatency,
    TimelineRead,
    TimelineService,
    WrongTag,
)
from gateway.runs.timeline import service_buckets, timeline_origin
from gateway.scoring.split import Split

router = APIRouter(prefix="/runs", tags=["runs"])

# The narrowest timeline bucket: the CLI's floor (`recoghub run timeline --bucket`);
# under it a bucket is a rounding error of the timestamps' microseconds, and at 1e-7 s it
# was zero wide (a 500).
MIN_BUCKET_S = 0.001


def _public_part(session: Session, run: Run, principal: Principal) -> Split | None:
    """For a team, the split of a run that is a challenge submission whose private part
    it may not see yet (None: nothing hidden); Forbidden while the phase hides every
    score (gateway.challenges.visibility)."""
    if principal.is_admin:
        return None
    return team_run_view(session, run=run)


def _whole_run_view(session: Session, run: Run, principal: Principal) -> None:
    """Refuse a team a view summed over every image of a split submission's run."""
    if _public_part(session, run, principal) is not None:
        raise Forbidden(
            f"run {run.id} is a submission to a challenge phase with a private part: its "
            "figures over every image stay hidden until the final ranking is published; the "
            "phase leaderboard shows the public part, and `results` lists its public images"
        )


def _board_provider(session: Session, run: Run, principal: Principal) -> str | None:
    """Whose rows `principal` sees of the run's leaderboard (and timeline): None for all;
    403 for an evaluation not published yet (SPEC §3), and for a challenge submission's
    run while its phase hides what the run would show (`_whole_run_view`)."""
    if principal.is_admin:
        return None
    _whole_run_view(session, run, principal)
    if run.phase != Phase.DRYRUN and not run.published:
        raise Forbidden(
            f"run {run.id}: the leaderboard of this evaluation is not published yet; "
            "the organizer publishes it when the evaluation is over"
        )
    return principal.provider_guid if run.phase == Phase.DRYRUN else None


def _not_in_dryrun(run: Run) -> Forbidden:
    return Forbidden(f"run {run.id}: your team takes no part in this dry run")


_LEADERBOARD = TypeAdapter(list[LeaderboardRow])


@router.get(
    "/{run_id}/leaderboard",
    response_model=list[LeaderboardRow],
    responses={
        200: {
            "description": "Ranked rows, best first: JSON, or CSV with a header (format=csv).",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **errors(401, 403, 404, 422),
    },
)
def get_leaderboard(
    run_id: RowIdPath,
    session: SessionDep,
    principal: CallerDep,
    fmt: Annotated[
        Literal["json", "csv"], Query(alias="format", description="json or csv.")
    ] = "json",
) -> Any:
    """Ranked rows, best first (all of them for the organizer; see the module doc)."""
    if fmt == "json":
        return leaderboard_json(session, run_id, principal)
    rows = _leaderboard_rows(session, run_id, principal)
    text = csv_text(LEADERBOARD_COLUMNS, [leaderboard_csv_row(r) for r in rows])
    filename = f"run-{run_id}-leaderboard.csv"
    return Response(
        text,
        media_type=CSV_MEDIA,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _leaderboard_rows(session: Session, run_id: int, principal: Principal) -> list[dict[str, Any]]:
    """The rows `principal` sees, the session closed."""
    with read_only(session):
        # The organizer's rows need no look-up first: `leaderboard` reads the run (or 404).
        run = None if principal.is_admin else service.get_run(session, run_id=run_id)
        only = None if run is None else _board_provider(session, run, principal)
        # A team's own rows: only those are read (and ranked among themselves).
        rows = service.leaderboard(session, run_id=run_id, provider_guid=only)
        if run is not None and only is not None and not rows:
            raise _not_in_dryrun(run)
    return rows


def leaderboard_json(session: Session, run_id: int, principal: Principal) -> Response:
    """`GET /runs/{run_id}/leaderboard`'s JSON answer (`gateway.runs.polled` too)."""
    return json_response(_LEADERBOARD, _leaderboard_rows(session, run_id, principal))


def _check_results_access(
    session: Session, run: Run, service_guid: str, principal: Principal
) -> None:
    svc = get_service(session, guid=service_guid)
    if principal.is_admin:
        return
    if svc.provider_id != principal.provider_id:
        raise Forbidden(f"service {service_guid} belongs to another team")
    _check_team_dryrun(run)


def _check_team_dryrun(run: Run) -> None:
    if run.phase != Phase.DRYRUN:
        raise Forbidden(
            f"run {run.id} is an evaluation: its results stay hidden (hidden test set); "
            "only dry-run results can be downloaded",
            code="hidden_results",
        )


@router.get(
    "/{run_id}/results",
    response_class=StreamingResponse,
    responses={
        **text_response(
            "One row per image: JSON lines (format=jsonl) or CSV with a header (format=csv). "
            "Without `service` (the organizer only): every service, with `service_guid`, "
            "`labels`, `detail`, `request_id` and `finished_at`.",
            "application/x-ndjson",
            "text/csv",
        ),
        **errors(401, 403, 404, 422),
    },
)
def get_results(
    run_id: RowIdPath,
    session: SessionDep,
    principal: CallerDep,
    service_guid: Annotated[
        str | None,
        Query(alias="service", description="Service GUID; every service when omitted (admin)."),
    ] = None,
    fmt: Annotated[ResultFormat, Query(alias="format", description="jsonl or csv.")] = "jsonl",
) -> StreamingResponse:
    """One row per image, streamed (see the module doc for who may)."""
    run = service.get_run(session, run_id=run_id)
    if service_guid is None:
        if not principal.is_admin:
            raise Forbidden(
                "the whole-run export is the organizer's; give `service` for your own results"
            )
        rows = service.iter_run_results(session, run_id=run_id)
        columns = RUN_RESULT_COLUMNS
        filename = f"run-{run_id}.{fmt}"
    else:
        _check_results_access(session, run, service_guid, principal)
        hidden = _public_part(session, run, principal)
        # Checks the service takes part at once, so that is a JSON error, not a broken
        # stream. The request's session outlives the response: FastAPI closes it after.
        rows = service.iter_results(
            session,
            run_id=run_id,
            service_guid=service_guid,
            keep_image=hidden.is_public if hidden is not None else None,
        )
        columns = RESULT_COLUMNS
        filename = f"run-{run_id}-{service_guid}.{fmt}"
    lines = batched(csv_lines(rows, columns) if fmt == "csv" else jsonl_lines(rows))
    media = CSV_MEDIA if fmt == "csv" else "application/x-ndjson"
    return StreamingResponse(
        lines,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/{run_id}/failures", responses=errors(401, 403, 404, 422))
def get_failures(
    run_id: RowIdPath, session: SessionDep, principal: CallerDep
) -> list[FailureGroupRead]:
    """Failures grouped by service, outcome and normalized detail, most frequent first
    within each service (a team: its own, of dry runs only)."""
    run = service.get_run(session, run_id=run_id)
    provider_id = None
    if not principal.is_admin:
        _check_team_dryrun(run)
        _whole_run_view(session, run, principal)
        provider_id = principal.provider_id
        if not run_members(session, run_id, provider_id):
            raise _not_in_dryrun(run)
    groups = failure_groups(session, run_id=run_id, provider_id=provider_id)
    return [FailureGroupRead.model_validate(g, from_attributes=True) for g in groups]


@router.get("/{run_id}/services/{service_guid}/classes", responses=errors(401, 403, 404, 422))
def get_classes(
    run_id: RowIdPath, service_guid: str, session: SessionDep, principal: CallerDep
) -> list[ClassRead]:
    """Per true label: images, top-1, top-5 and the most frequent wrong first tags, by
    label (a team: its own service, of dry runs only)."""
    run = service.get_run(session, run_id=run_id)
    _check_results_access(session, run, service_guid, principal)
    _whole_run_view(session, run, principal)
    svc = get_service(session, guid=service_guid)
    run_service_id = session.scalar(
        select(RunService.id).where(RunService.run_id == run_id, RunService.service_id == svc.id)
    )
    if run_service_id is None:
        raise NotFound(f"service {svc.guid} takes no part in run {run_id}")
    return [
        ClassRead(
            label=figures.label,
            images=figures.images,
            top1=figures.top1,
            top5=figures.top5,
            failed=figures.failed,
            top1_accuracy=figures.top1 / figures.images,
            top5_accuracy=figures.top5 / figures.images,
            wrong_top1=[WrongTag(tag=tag, count=n) for tag, n in wrong],
        )
        for figures, wrong in class_figures(session, run_service_id=run_service_id)
    ]


@router.get(
    "/{run_id}/timeline",
    response_model=TimelineRead,
    responses={
        200: {
            "description": "Per service and time bucket: JSON, or CSV (format=csv).",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **errors(401, 403, 404, 422),
    },
)
def get_timeline(
    run_id: RowIdPath,
    session: SessionDep,
    principal: CallerDep,
    bucket_s: Annotated[
        float,
        Query(
            ge=MIN_BUCKET_S,
            le=86_400,
            description="Bucket width, seconds: from a millisecond (the narrowest the CLI "
            "takes; the dashboard's start at 1 s) to a day.",
        ),
    ] = 10.0,
    fmt: Annotated[
        Literal["json", "csv"], Query(alias="format", description="json or csv.")
    ] = "json",
) -> Any:
    """Per service and time bucket: answers, `ok`, failures by outcome, images/s and the
    latency p50/p99 of the `ok` answers (who sees which services: as the leaderboard)."""
    run = service.get_run(session, run_id=run_id)
    only = _board_provider(session, run, principal)
    members = run_members(session, run_id)
    if only is not None:
        members = [m for m in members if m.provider_guid == only]
        if not members:
            raise _not_in_dryrun(run)
    origin = timeline_origin(session, run)
    down = downtimes(session.connection(), run_service_ids=[m.id for m in members])
    services = []
    for m in members:
        buckets = []
        if origin is not None:
            for b in service_buckets(
                session, run_service_id=m.id, origin=origin, bucket_s=bucket_s
            ):
                buckets.append(
                    TimelineBucket(
                        start=origin + timedelta(seconds=b.index * bucket_s),
                        t_s=b.index * bucket_s,
                        done=b.done,
                        ok=b.ok,
                        failures=dict(b.failures),
                        images_per_s=b.done / bucket_s,
                        latency_ms=TimelineLatency(p50=b.latency(50), p99=b.latency(99)),
                    )
                )
        services.append(
            TimelineService(
                service_guid=m.service_guid,
                service_name=m.service_name,
                provider_guid=m.provider_guid,
                provider_name=m.provider_name,
                buckets=buckets,
                down=timeline_intervals(down.get(m.id, []), origin=origin, ended=run.finished_at),
            )
        )
    timeline = TimelineRead(run_id=run_id, bucket_s=bucket_s, origin=origin, services=services)
    if fmt != "csv":
        return timeline
    rows = [
        {
            "service_guid": s.service_guid,
            "provider_name": s.provider_name,
            "service_name": s.service_name,
            "start": iso(b.start),
            "t_s": b.t_s,
            "done": b.done,
            "ok": b.ok,
            **{o: b.failures.get(o, 0) for o in OUTCOMES if o != "ok"},
            "images_per_s": b.images_per_s,
            "latency_p50_ms": b.latency_ms.p50,
            "latency_p99_ms": b.latency_ms.p99,
        }
        for s in services
        for b in s.buckets
    ]
    return Response(
        csv_text(TIMELINE_COLUMNS, rows),
        media_type=CSV_MEDIA,
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}-timeline.csv"'},
    )

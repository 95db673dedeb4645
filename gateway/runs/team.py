"""Dry runs a team starts itself (SPEC §3): on a dataset the organizer opened to teams,
of the team's own services, within `RECOGHUB_TEAM_DRYRUNS_PER_DAY` in any 24 hours.

The quota counts the runs the provider started in the 24 hours before now, cancelled
ones included (they cost the hub as much). Two requests of one provider at once must
not both pass the count: the provider's row is written first, which takes PostgreSQL's
row lock and SQLite's write lock until the run is committed.
"""

import math
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.db import utcnow
from gateway.errors import Forbidden, InvalidInput, QuotaExceeded
from gateway.registry.caps import lock_provider
from gateway.registry.models import Service
from gateway.registry.service import get_service
from gateway.runs.models import Phase, Run
from gateway.runs.service import create_run, find_dataset

QUOTA_WINDOW = timedelta(hours=24)


def create_team_dryrun(
    session: Session,
    *,
    settings: Settings,
    provider_id: int,
    dataset: int | str,
    service_guids: list[str] | None = None,
    metric: str | None = None,
) -> Run:
    """Queue a dry run that provider `provider_id` asked for. Commits.

    Raises NotFound for an unknown dataset or service, Forbidden for a dataset not open
    to teams or another provider's service, InvalidInput as `create_run` does (and when
    the provider has no enabled service), QuotaExceeded when the quota is used up.
    """
    found = find_dataset(session, dataset)
    if not found.open_to_teams:
        raise Forbidden(
            f"dataset {found.name!r} is not open to team dry runs (only the organizer "
            "opens datasets to teams; GET /api/v1/datasets lists the open ones)"
        )
    guids = _own_services(session, provider_id=provider_id, service_guids=service_guids)
    lock_provider(session, provider_id=provider_id)  # the count holds until commit
    _check_quota(session, settings=settings, provider_id=provider_id)
    run = create_run(
        session,
        settings=settings,
        dataset=found.id,
        phase=Phase.DRYRUN,
        service_guids=guids,
        metric=metric,
        started_by_id=provider_id,
    )
    return run


def _own_services(
    session: Session, *, provider_id: int, service_guids: list[str] | None
) -> list[str]:
    if service_guids is None:
        guids = list(
            session.scalars(
                select(Service.guid)
                .where(Service.provider_id == provider_id, Service.enabled.is_(True))
                .order_by(Service.id)
            )
        )
        if not guids:
            raise InvalidInput("your team has no enabled service; enable one or register one")
        return guids
    for guid in service_guids:
        if get_service(session, guid=guid).provider_id != provider_id:
            raise Forbidden(
                f"service {guid} belongs to another team; a team's dry run tries only its own "
                "services"
            )
    return service_guids


def _check_quota(session: Session, *, settings: Settings, provider_id: int) -> None:
    limit = settings.team_dryruns_per_day
    if limit == 0:
        raise Forbidden(
            "team-started dry runs are turned off on this hub (RECOGHUB_TEAM_DRYRUNS_PER_DAY=0); "
            "ask the organizer"
        )
    now = utcnow()
    started = list(
        session.scalars(
            select(Run.created_at)
            .where(Run.started_by_id == provider_id, Run.created_at > now - QUOTA_WINDOW)
            .order_by(Run.created_at.desc())
            .limit(limit)
        )
    )
    if len(started) < limit:
        return
    # The oldest of the last `limit` runs leaves the window first.
    next_at = started[-1] + QUOTA_WINDOW
    retry_after = max(1, math.ceil((next_at - now).total_seconds()))
    stamp = next_at.replace(microsecond=0).isoformat() + "Z"
    raise QuotaExceeded(
        f"your team started {len(started)} dry runs in the last 24 hours, the most allowed "
        f"(RECOGHUB_TEAM_DRYRUNS_PER_DAY={limit}); the next one is allowed at {stamp}",
        retry_after_s=retry_after,
        next_allowed_at=stamp,
    )

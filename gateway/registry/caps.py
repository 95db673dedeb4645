"""A team's share of the hub (SPEC §9): what a provider may give its services.

Three caps, each a setting the organizer may exceed with the admin token:

- `RECOGHUB_SERVICE_CONCURRENCY_MAX`: one service's `max_concurrency`;
- `RECOGHUB_PROVIDER_CONCURRENCY_MAX`: the sum of `max_concurrency` over all of a
  provider's services (disabled ones too: enabling one is a PATCH the caps do not see);
- `RECOGHUB_PROVIDER_SERVICES_MAX`: how many services a provider has.

The team's `prediction files` service (`Service.files`, SPEC §13) counts for neither:
it is never run and the hub, not the team, made it.

Without the per-provider caps, a team registering 40 services at the per-service cap
held 320 requests in flight, more than a worker's `RECOGHUB_GLOBAL_CONCURRENCY`, and
another team's evaluation slowed a hundredfold. A provider may always keep (or lower)
what it has, also when the organizer set it over a cap.

Two requests of one provider at once must not both pass the sum: the provider's row
is written first (a no-op write), which takes PostgreSQL's row lock and SQLite's write
lock until the service is committed.
"""

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gateway.auth import Principal
from gateway.config import Settings
from gateway.errors import Conflict, InvalidInput
from gateway.registry.models import Provider, Service


@dataclass(frozen=True)
class TeamCaps:
    """The caps a provider is held to; None is no cap (the organizer is never held)."""

    service_concurrency: int | None = None
    provider_concurrency: int | None = None
    provider_services: int | None = None

    @classmethod
    def of(cls, settings: Settings) -> "TeamCaps":
        return cls(
            service_concurrency=settings.service_concurrency_max,
            provider_concurrency=settings.provider_concurrency_max,
            provider_services=settings.provider_services_max,
        )


def lock_provider(session: Session, *, provider_id: int) -> None:
    """Hold the provider's row until the transaction ends, so that a count or a sum over
    its rows stays true until commit (a no-op write: PostgreSQL's row lock, SQLite's
    write lock)."""
    session.execute(update(Provider).where(Provider.id == provider_id).values(id=Provider.id))


def check_service_concurrency(
    principal: Principal, *, requested: int | None, current: int | None, cap: int | None
) -> None:
    """A provider may set `max_concurrency` up to `cap` (RECOGHUB_SERVICE_CONCURRENCY_MAX):
    a team must not take more of a run's capacity than the organizer allows. The organizer
    may set more, and a provider may keep (or lower) what the organizer set.
    Raises InvalidInput."""
    if principal.is_admin or cap is None or requested is None:
        return
    if requested > cap and (current is None or requested > current):
        raise InvalidInput(
            f"max_concurrency {requested} is over the {cap} a provider may set "
            "(RECOGHUB_SERVICE_CONCURRENCY_MAX); the organizer can set more"
        )


def check_provider_share(
    session: Session,
    *,
    principal: Principal,
    provider_id: int,
    caps: TeamCaps,
    requested: int,
    service: Service | None = None,
) -> None:
    """Hold a provider to its caps before it adds a service (`service` None) with
    `requested` concurrency, or raises `service`'s to `requested`. Locks the provider's
    row first (see the module doc); the caller commits.

    Raises Conflict (`provider_services_max`) when the provider has as many services as
    it may, InvalidInput (`provider_concurrency_max`) when its total would pass the cap.
    """
    if principal.is_admin:
        return
    if service is not None and requested <= service.max_concurrency:
        return  # keeping or lowering is always allowed
    if caps.provider_concurrency is None and caps.provider_services is None:
        return
    lock_provider(session, provider_id=provider_id)
    count, total = session.execute(
        select(func.count(Service.id), func.coalesce(func.sum(Service.max_concurrency), 0)).where(
            Service.provider_id == provider_id, Service.files.is_(False)
        )
    ).one()
    cap = caps.provider_services
    if service is None and cap is not None and count >= cap:
        raise Conflict(
            f"your team has {count} services, the most a provider may register "
            f"(RECOGHUB_PROVIDER_SERVICES_MAX={cap}); delete one you no longer use, or ask "
            "the organizer, who can register more",
            code="provider_services_max",
        )
    cap = caps.provider_concurrency
    others = total - (service.max_concurrency if service is not None else 0)
    if cap is not None and others + requested > cap:
        raise InvalidInput(
            f"max_concurrency {requested} would bring your team's total over its services "
            f"to {others + requested}, over the {cap} a provider may have "
            f"(RECOGHUB_PROVIDER_CONCURRENCY_MAX); your services now total {total}: lower "
            "one, or ask the organizer, who can set more",
            code="provider_concurrency_max",
        )

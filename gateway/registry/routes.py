"""`/api/v1/providers` and `/api/v1/services`: thin routes over `registry.service`."""

from fastapi import APIRouter, Response

from gateway.deps import AdminDep, CallerDep, HubStateDep, SessionDep
from gateway.dispatch.policy import endpoint_policy
from gateway.openapi import errors
from gateway.registry import service as registry
from gateway.registry.caps import TeamCaps
from gateway.registry.schemas import (
    CallerRead,
    ProviderCreate,
    ProviderRead,
    ProviderReadWithKey,
    ServiceCreate,
    ServiceRead,
    ServiceReadWithSecret,
    ServiceUpdate,
)
from gateway.relay.service import forget_targets

providers_router = APIRouter(prefix="/providers", tags=["providers"])
services_router = APIRouter(prefix="/services", tags=["services"])
whoami_router = APIRouter(tags=["hub"])


@whoami_router.get("/whoami", responses=errors(401))
def whoami(session: SessionDep, principal: CallerDep) -> CallerRead:
    """Who the bearer token is (the dashboard shows the organizer's or a team's view)."""
    if principal.is_admin:
        return CallerRead(role="organizer", provider=None)
    provider = registry.get_provider_for(
        session, principal=principal, guid=str(principal.provider_guid)
    )
    return CallerRead(role="provider", provider=ProviderRead.of(provider))


@providers_router.post("", status_code=201, responses=errors(400, 401, 403, 409, 413, 422))
def create_provider(
    data: ProviderCreate, session: SessionDep, _admin: AdminDep
) -> ProviderReadWithKey:
    """Register a team. The answer holds its API key: shown only now, stored only hashed."""
    provider, api_key = registry.create_provider(session, data=data)
    return ProviderReadWithKey.of(provider, api_key=api_key)


@providers_router.get("", responses=errors(401))
def list_providers(session: SessionDep, principal: CallerDep) -> list[ProviderRead]:
    """Every provider for the organizer; a provider sees only itself."""
    return [ProviderRead.of(p) for p in registry.list_providers(session, principal=principal)]


@providers_router.get("/{guid}", responses=errors(401, 403, 404))
def get_provider(guid: str, session: SessionDep, principal: CallerDep) -> ProviderRead:
    provider = registry.get_provider_for(session, principal=principal, guid=guid)
    return ProviderRead.of(provider)


@providers_router.post("/{guid}/rotate-key", responses=errors(401, 403, 404))
def rotate_provider_key(
    guid: str, session: SessionDep, _admin: AdminDep, state: HubStateDep
) -> ProviderReadWithKey:
    """Issue the team a new API key (shown only now); the old key stops working at once."""
    provider = registry.get_provider(session, guid=guid)
    api_key = registry.rotate_api_key(session, provider=provider)
    forget_targets(state)  # relays cached under the old key's digest
    return ProviderReadWithKey.of(provider, api_key=api_key)


@providers_router.delete("/{guid}", status_code=204, responses=errors(401, 403, 404, 409))
def delete_provider(
    guid: str, session: SessionDep, _admin: AdminDep, state: HubStateDep
) -> Response:
    """Remove a team with its services; 409 when a run holds results of one of them."""
    provider = registry.get_provider(session, guid=guid)
    registry.delete_provider(session, provider=provider)
    forget_targets(state)
    return Response(status_code=204)


@services_router.post("", status_code=201, responses=errors(400, 401, 403, 404, 409, 413, 422))
def create_service(
    data: ServiceCreate, session: SessionDep, principal: CallerDep, state: HubStateDep
) -> ServiceReadWithSecret:
    """Register a service. The answer holds its signing secret (see also rotate_secret).

    A provider may have at most RECOGHUB_PROVIDER_SERVICES_MAX services (default 10; 409
    `provider_services_max` past it); the organizer may register more."""
    service = registry.create_service(
        session,
        principal=principal,
        data=data,
        policy=endpoint_policy(state.settings.endpoint_allow),
        default_max_concurrency=state.settings.service_concurrency,
        caps=TeamCaps.of(state.settings),
    )
    return ServiceReadWithSecret.of(service, signing_secret=service.signing_secret)


@services_router.get("", responses=errors(401, 403, 404))
def list_services(
    session: SessionDep, principal: CallerDep, provider: str | None = None
) -> list[ServiceRead]:
    """All services for the organizer (`?provider=GUID` narrows); a provider's own."""
    services = registry.list_services(session, principal=principal, provider_guid=provider)
    return [ServiceRead.of(s) for s in services]


@services_router.get("/{guid}", responses=errors(401, 403, 404))
def get_service(
    guid: str, session: SessionDep, principal: CallerDep, state: HubStateDep
) -> ServiceRead:
    """One service, with the recognizers connected out to this hub process."""
    service = registry.get_service_for(session, principal=principal, guid=guid)
    read = ServiceRead.of(service)
    read.connected = list(state.dispatcher.connections.instances(service.guid))
    return read


@services_router.patch(
    "/{guid}",
    response_model=ServiceReadWithSecret | ServiceRead,
    responses=errors(400, 401, 403, 404, 409, 413, 422),
)
def update_service(
    guid: str, data: ServiceUpdate, session: SessionDep, principal: CallerDep, state: HubStateDep
) -> ServiceReadWithSecret | ServiceRead:
    """Change name, endpoints, enabled, domain or max_concurrency; rotate_secret shows the new
    secret once."""
    service = registry.get_service_for(session, principal=principal, guid=guid)
    service = registry.update_service(
        session,
        principal=principal,
        service=service,
        data=data,
        policy=endpoint_policy(state.settings.endpoint_allow),
        caps=TeamCaps.of(state.settings),
    )
    forget_targets(state)  # the relay must not keep sending to old endpoints or secrets
    if data.rotate_secret:
        return ServiceReadWithSecret.of(service, signing_secret=service.signing_secret)
    return ServiceRead.of(service)


@services_router.delete("/{guid}", status_code=204, responses=errors(401, 403, 404, 409))
def delete_service(
    guid: str, session: SessionDep, principal: CallerDep, state: HubStateDep
) -> Response:
    service = registry.get_service_for(session, principal=principal, guid=guid)
    registry.delete_service(session, service=service)
    forget_targets(state)
    return Response(status_code=204)

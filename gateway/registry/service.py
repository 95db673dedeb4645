"""Providers and services: creation, look-up, access rules and the dispatch target.

Every look-up by GUID tells a GUID of the wrong kind from an unknown one: a provider
GUID given where a service GUID belongs (or the reverse) raises `WrongGuidKind`, the
commonest mistake teams made with the original hub.

Functions that change the registry commit; look-ups leave the transaction to the caller.
"""

import ipaddress
import secrets
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from gateway.auth import Principal, hash_token, new_api_key
from gateway.dispatch.answers import Target
from gateway.dispatch.policy import SETTING, EndpointPolicy
from gateway.dispatch.protocols import adapter_for
from gateway.dispatch.protocols.options import RECOGHUB_V1
from gateway.errors import Conflict, Forbidden, InvalidInput, NotFound, WrongGuidKind
from gateway.registry.caps import TeamCaps, check_provider_share, check_service_concurrency
from gateway.registry.models import Instance, Provider, Service
from gateway.registry.protocols import ProtocolOptionsIn, normalized_protocol, protocol_problem
from gateway.registry.schemas import ProviderCreate, ServiceCreate, ServiceUpdate, canonical_guid

DEFAULT_MAX_CONCURRENCY = 4
NO_CAPS = TeamCaps()

_PROVIDER_LOADS = (selectinload(Provider.services),)
_SERVICE_LOADS = (joinedload(Service.provider), selectinload(Service.instances))


def new_signing_secret() -> str:
    return secrets.token_urlsafe(32)


def _key(guid: str) -> str:
    # GUIDs are stored in canonical lower-case form; upper case and braces still match.
    return canonical_guid(guid) or guid.strip()


def _is_provider_guid(session: Session, guid: str) -> bool:
    return bool(session.scalar(select(exists().where(Provider.guid == guid))))


def _is_service_guid(session: Session, guid: str, *, provider_id: int | None = None) -> bool:
    clause = exists().where(Service.guid == guid)
    if provider_id is not None:
        clause = clause.where(Service.provider_id == provider_id)
    return bool(session.scalar(select(clause)))


def _unknown(kind: str, guid: str) -> NotFound:
    malformed = "" if canonical_guid(guid) else " (and that is not a well-formed GUID)"
    return NotFound(f"no {kind} with GUID {guid}{malformed}")


def _ensure_guid_free(session: Session, guid: str) -> None:
    if _is_provider_guid(session, guid):
        raise Conflict(f"GUID {guid} is already taken by a provider")
    if _is_service_guid(session, guid):
        raise Conflict(f"GUID {guid} is already taken by a service")


def _commit_new(session: Session, guid: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        # Two requests raced for the same client-chosen GUID.
        session.rollback()
        raise Conflict(f"GUID {guid} is already taken") from None


def _require_self(session: Session, principal: Principal, guid: str, action: str) -> None:
    """A provider may only name itself; the organizer may name anyone."""
    principal.require_caller()
    if principal.is_admin or guid == principal.provider_guid:
        return
    # Only the caller's own services are told apart, so nothing about others leaks.
    if _is_service_guid(session, guid, provider_id=principal.provider_id):
        raise WrongGuidKind(f"{guid} is a service GUID, not a provider GUID")
    raise Forbidden(
        f"a provider may only {action} itself; your provider GUID is {principal.provider_guid}"
    )


# Providers


def get_provider(session: Session, *, guid: str) -> Provider:
    """The provider `guid`, with its services.

    Raises WrongGuidKind when `guid` names a service, NotFound when it names nothing.
    """
    key = _key(guid)
    provider = session.scalar(
        select(Provider).options(*_PROVIDER_LOADS).where(Provider.guid == key)
    )
    if provider is not None:
        return provider
    if _is_service_guid(session, key):
        raise WrongGuidKind(f"{key} is a service GUID, not a provider GUID")
    raise _unknown("provider", guid)


def get_provider_for(session: Session, *, principal: Principal, guid: str) -> Provider:
    """The provider `guid` as `principal` may see it: the organizer any, a provider itself.

    Raises Forbidden when a provider asks for anyone else, and as `get_provider`.
    """
    _require_self(session, principal, _key(guid), "see")
    return get_provider(session, guid=guid)


def list_providers(session: Session, *, principal: Principal) -> Sequence[Provider]:
    """Every provider for the organizer; for a provider, a list holding only itself."""
    principal.require_caller()
    query = select(Provider).options(*_PROVIDER_LOADS).order_by(Provider.id)
    if not principal.is_admin:
        query = query.where(Provider.id == principal.provider_id)
    return session.scalars(query).all()


def create_provider(session: Session, *, data: ProviderCreate) -> tuple[Provider, str]:
    """Register a team; returns it with its API key, which is stored only as a hash.

    Raises Conflict when the chosen GUID is taken by a provider or a service.
    """
    guid = data.guid or str(uuid.uuid4())
    _ensure_guid_free(session, guid)
    api_key = new_api_key()
    provider = Provider(
        guid=guid,
        name=data.name,
        contact=data.contact or None,
        api_key_hash=hash_token(api_key),
        services=[],
    )
    session.add(provider)
    _commit_new(session, guid)
    return provider, api_key


def rotate_api_key(session: Session, *, provider: Provider) -> str:
    """Give `provider` a new API key; the old one stops working at once. Returns the new
    key (stored only as its hash). Commits."""
    api_key = new_api_key()
    provider.api_key_hash = hash_token(api_key)
    session.commit()
    return api_key


def delete_provider(session: Session, *, provider: Provider) -> None:
    """Remove a provider with its services and their instances.

    Raises Conflict when runs hold results of one of its services: they keep their
    place on leaderboards; disable its services instead.
    """
    guid, name = provider.guid, provider.name
    session.delete(provider)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            f"provider {guid} ({name}) has services that took part in runs whose results "
            'refer to them; disable its services instead (PATCH {"enabled": false})'
        ) from None


# Services


def get_service(session: Session, *, guid: str) -> Service:
    """The service `guid`, with its provider and instances loaded.

    Raises WrongGuidKind when `guid` names a provider, NotFound when it names nothing.
    """
    key = _key(guid)
    service = session.scalar(select(Service).options(*_SERVICE_LOADS).where(Service.guid == key))
    if service is not None:
        return service
    if _is_provider_guid(session, key):
        raise WrongGuidKind(f"{key} is a provider GUID, not a service GUID")
    raise _unknown("service", guid)


def authorize_service(principal: Principal, service: Service) -> None:
    """Allow the organizer and the service's own provider.

    Raises Unauthorized for an anonymous caller, Forbidden for another provider.
    """
    principal.require_caller()
    if not principal.may_act_for(service.provider_id):
        raise Forbidden(
            f"service {service.guid} belongs to another provider; "
            "a provider may only use its own services"
        )


def get_service_for(session: Session, *, principal: Principal, guid: str) -> Service:
    """`get_service`, then `authorize_service`."""
    principal.require_caller()
    service = get_service(session, guid=guid)
    authorize_service(principal, service)
    return service


def list_services(
    session: Session, *, principal: Principal, provider_guid: str | None = None
) -> Sequence[Service]:
    """All services for the organizer (or one provider's); a provider's own for a provider."""
    principal.require_caller()
    query = select(Service).options(*_SERVICE_LOADS).order_by(Service.id)
    if provider_guid is not None:
        _require_self(session, principal, _key(provider_guid), "list the services of")
        provider = get_provider(session, guid=provider_guid)
        query = query.where(Service.provider_id == provider.id)
    elif not principal.is_admin:
        query = query.where(Service.provider_id == principal.provider_id)
    # A team's `prediction files` service is the hub's, not one of its services.
    query = query.where(Service.files.is_(False))
    return session.scalars(query).all()


def create_service(
    session: Session,
    *,
    principal: Principal,
    data: ServiceCreate,
    policy: EndpointPolicy,
    default_max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    caps: TeamCaps = NO_CAPS,
) -> Service:
    """Register a service for `data.provider_guid` with a new signing secret.

    Raises Forbidden when a provider names another provider, WrongGuidKind/NotFound
    for a bad provider GUID, Conflict when the chosen GUID is taken, InvalidInput
    (`endpoint_not_allowed`) for an endpoint address the policy refuses, and as
    `gateway.registry.caps` for a provider past one of its `caps`.
    """
    _require_self(session, principal, _key(data.provider_guid), "create services for")
    check_endpoint_addresses(data.endpoints, policy=policy)
    check_service_concurrency(
        principal, requested=data.max_concurrency, current=None, cap=caps.service_concurrency
    )
    provider = get_provider(session, guid=data.provider_guid)
    guid = data.guid or str(uuid.uuid4())
    _ensure_guid_free(session, guid)
    check_provider_share(
        session,
        principal=principal,
        provider_id=provider.id,
        caps=caps,
        requested=data.max_concurrency or default_max_concurrency,
    )
    service = Service(
        guid=guid,
        provider=provider,
        name=data.name,
        domain=data.domain,
        protocol=data.protocol,
        protocol_options=data.protocol_options.stored() if data.protocol_options else None,
        enabled=True,
        max_concurrency=data.max_concurrency or default_max_concurrency,
        signing_secret=new_signing_secret(),
        instances=_instances(data.endpoints),
    )
    session.add(service)
    _commit_new(session, guid)
    return service


def update_service(
    session: Session,
    *,
    principal: Principal,
    service: Service,
    data: ServiceUpdate,
    policy: EndpointPolicy,
    caps: TeamCaps = NO_CAPS,
) -> Service:
    """Apply the fields given in `data`; `rotate_secret` issues a new signing secret.

    Raises InvalidInput (`endpoint_not_allowed`) for an endpoint address the policy
    refuses, as `gateway.registry.caps` for a provider's max_concurrency past its `caps`,
    and when the protocol and its options, as they would be after the change, do not
    fit together (SPEC §11).
    """
    _not_files(service)
    if data.endpoints is not None:
        check_endpoint_addresses(data.endpoints, policy=policy)
    check_service_concurrency(
        principal,
        requested=data.max_concurrency,
        current=service.max_concurrency,
        cap=caps.service_concurrency,
    )
    if data.max_concurrency is not None:
        check_provider_share(
            session,
            principal=principal,
            provider_id=service.provider_id,
            caps=caps,
            requested=data.max_concurrency,
            service=service,
        )
    _update_protocol(service, data)
    if data.name is not None:
        service.name = data.name
    if data.endpoints is not None:
        service.instances = _instances(data.endpoints)
    if data.enabled is not None:
        service.enabled = data.enabled
    if "domain" in data.model_fields_set:
        service.domain = data.domain
    if data.max_concurrency is not None:
        service.max_concurrency = data.max_concurrency
    if data.rotate_secret:
        service.signing_secret = new_signing_secret()
    session.commit()
    return service


def delete_service(session: Session, *, service: Service) -> None:
    """Remove a service and its instances.

    Raises Conflict when runs hold its results; disabling it keeps them.
    """
    _not_files(service)
    guid = service.guid
    session.delete(service)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            f"service {guid} took part in runs whose results refer to it; "
            'disable it instead (PATCH {"enabled": false})'
        ) from None


def _not_files(service: Service) -> None:
    """Raises Conflict (`files_service`) for a team's `prediction files` service."""
    if service.files:
        raise Conflict(
            f"service {service.guid} holds your team's scored prediction files (SPEC §13); "
            "the hub keeps it, it cannot be enabled, changed or deleted",
            code="files_service",
        )


def check_endpoint_addresses(endpoints: list[str], *, policy: EndpointPolicy) -> None:
    """Refuse endpoints whose host is an address the policy refuses (SPEC §9).

    Host names are not resolved here: the dispatch client checks every address it
    connects to. Raises InvalidInput with code `endpoint_not_allowed`.
    """
    for endpoint in endpoints:
        host = urlsplit(endpoint).hostname or ""
        try:
            reason = policy.refusal(host)
        except ValueError:
            continue  # a name, checked at each connection
        if reason is not None:
            raise InvalidInput(
                f"endpoint {endpoint!r} names {reason} ({host}); the hub sends only to "
                f"public addresses unless the organizer allows the network in {SETTING} "
                f"and restarts `recoghub serve`, e.g. {SETTING}={_example_network(host)}",
                code="endpoint_not_allowed",
            )


def _example_network(host: str) -> str:
    """A value of the setting that would allow `host`: loopback whole, else the host."""
    address = ipaddress.ip_address(host)
    if address.is_loopback:
        return "127.0.0.0/8,::1/128"
    return f"{address}/{address.max_prefixlen}"


def service_target(service: Service) -> Target:
    """What the dispatcher needs to send to `service` (provider and instances loaded)."""
    return Target(
        service_guid=service.guid,
        provider_guid=service.provider.guid,
        instances=tuple(service.endpoints),
        signing_secret=service.signing_secret,
        adapter=adapter_for(service.protocol, service.protocol_options),
    )


def _update_protocol(service: Service, data: ServiceUpdate) -> None:
    given = data.model_fields_set
    if not {"protocol", "protocol_options"} & given:
        return
    protocol = normalized_protocol(data.protocol or service.protocol)
    if "protocol_options" in given:
        options = data.protocol_options
    elif protocol == RECOGHUB_V1:
        options = None  # switching back to recoghub-v1 drops options it has no use for
    else:
        options = ProtocolOptionsIn.model_validate(service.protocol_options or {})
    problem = protocol_problem(protocol, options)
    if problem:
        raise InvalidInput(problem)
    service.protocol = protocol
    service.protocol_options = options.stored() if options is not None else None


def _instances(endpoints: list[str]) -> list[Instance]:
    return [Instance(position=i, url=url) for i, url in enumerate(endpoints)]

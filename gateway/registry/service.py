"""Providers and services: creation, look-up, access rules and the dispatch target.

Every look-up by GUID tells a GUID of the wrong kind from an unknown one: a provider
GUID given where a service GUID belongs (or the reverse) raises `WrongGuidKind`, the
commonest mistake teams made with the original hub.
"""

import secrets
import uuid
from collections.abc import Sequence

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from gateway.auth import Principal, hash_token, new_api_key
from gateway.dispatch.dispatcher import Target
from gateway.errors import Conflict, Forbidden, NotFound, WrongGuidKind
from gateway.registry.models import Instance, Provider, Service
from gateway.registry.schemas import (
    ProviderCreate,
    ProviderRead,
    ServiceCreate,
    ServiceRead,
    ServiceUpdate,
    canonical_guid,
)

DEFAULT_MAX_CONCURRENCY = 4


def new_signing_secret() -> str:
    return secrets.token_urlsafe(32)


def _lookup_key(guid: str) -> str:
    # GUIDs are stored in canonical lower-case form; accept upper case and braces too.
    return canonical_guid(guid) or guid.strip()


def _is_provider_guid(session: Session, guid: str) -> bool:
    return bool(session.scalar(select(exists().where(Provider.guid == guid))))


def _is_service_guid(session: Session, guid: str) -> bool:
    return bool(session.scalar(select(exists().where(Service.guid == guid))))


def _unknown(kind: str, guid: str) -> NotFound:
    malformed = "" if canonical_guid(guid) else " (and it is not a well-formed GUID)"
    return NotFound(f"no {kind} with GUID {guid}{malformed}")


def _provider_query() -> "select[tuple[Provider]]":  # type: ignore[name-defined]
    return select(Provider).options(selectinload(Provider.services))


def _service_query() -> "select[tuple[Service]]":  # type: ignore[name-defined]
    return select(Service).options(joinedload(Service.provider), selectinload(Service.instances))

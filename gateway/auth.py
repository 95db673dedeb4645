"""Who is calling: the organizer (admin token), a provider (API key) or anyone.

Tokens are random and long, so a single SHA-256 is the right hash at rest: it is
not brute-forceable and costs nothing per request. Comparisons are constant-time.
"""

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import Forbidden, Unauthorized
from gateway.registry.models import HubSecret, Provider

log = logging.getLogger("recoghub")
ADMIN_SECRET_NAME = "admin_token"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_key() -> str:
    return "rk_" + secrets.token_urlsafe(32)


def new_admin_token() -> str:
    return "ra_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request. `provider_id` is set for a provider, None otherwise."""

    is_admin: bool = False
    provider_id: int | None = None
    provider_guid: str | None = None

    @property
    def anonymous(self) -> bool:
        return not self.is_admin and self.provider_id is None

    def require_admin(self) -> None:
        if self.anonymous:
            raise Unauthorized("this route needs an Authorization: Bearer token")
        if not self.is_admin:
            raise Forbidden("only the organizer (admin token) may do this")

    def require_caller(self) -> None:
        if self.anonymous:
            raise Unauthorized("this route needs an Authorization: Bearer token")

    def may_act_for(self, provider_id: int) -> bool:
        return self.is_admin or self.provider_id == provider_id


ANONYMOUS = Principal()
ADMIN = Principal(is_admin=True)


def ensure_admin_token(session: Session, configured: str | None) -> str | None:
    """Make sure the hub has an admin token; returns a newly generated one (to print once).

    With `RECOGHUB_ADMIN_TOKEN` set nothing is stored. Otherwise the first start
    generates a token and stores only its hash.
    """
    stored = session.get(HubSecret, ADMIN_SECRET_NAME)
    if configured:
        if stored is not None:
            # Said at every start: the generated token stops working while this is set.
            log.warning(
                "RECOGHUB_ADMIN_TOKEN is set: it replaces the admin token generated at "
                "first start, which is refused while the setting is there"
            )
        return None
    if stored is not None:
        return None
    token = new_admin_token()
    session.add(HubSecret(name=ADMIN_SECRET_NAME, value_hash=hash_token(token)))
    return token


def is_configured_admin(token: str, configured_admin: str | None) -> bool:
    """The token is the admin token the hub was configured with (no database needed)."""
    return configured_admin is not None and hmac.compare_digest(
        hash_token(token), hash_token(configured_admin)
    )


def authenticate(session: Session, token: str | None, *, configured_admin: str | None) -> Principal:
    """The principal for a bearer token; raises Unauthorized for an unknown token."""
    if not token:
        return ANONYMOUS
    if is_configured_admin(token, configured_admin):
        return ADMIN
    return look_up(session, token, configured_admin=configured_admin)


def look_up(session: Session, token: str, *, configured_admin: str | None) -> Principal:
    """The principal of a token that is not the configured admin token: the stored admin
    token's (when none is configured) or a provider's; raises Unauthorized."""
    digest = hash_token(token)
    if configured_admin is None:
        stored = session.get(HubSecret, ADMIN_SECRET_NAME)
        if stored is not None and hmac.compare_digest(digest, stored.value_hash):
            return ADMIN
    provider = session.scalar(select(Provider).where(Provider.api_key_hash == digest))
    if provider is not None and hmac.compare_digest(digest, provider.api_key_hash):
        return Principal(provider_id=provider.id, provider_guid=provider.guid)
    raise Unauthorized("unknown token: check RECOGHUB_API_KEY (a provider key) or the admin token")

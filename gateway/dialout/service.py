"""The database side of a dial-out connection: whose key opens it (before the upgrade),
which service its hello may connect, and where the live dispatching processes are
(SPEC §10). Run these in a thread."""

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth import ANONYMOUS, Principal, authenticate
from gateway.dialout import frames
from gateway.dialout.frames import Hello
from gateway.errors import NotFound, Unauthorized, WrongGuidKind
from gateway.registry.service import get_service
from gateway.runs.models import Worker


class Refused(Exception):
    """A hello the hub closes with `code` and `reason` (what to do)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = frames.close_reason(reason)


@dataclass(frozen=True, slots=True)
class Admitted:
    service_guid: str
    granted: int  # requests in flight on the connection, never above the service's


def authenticate_key(session: Session, *, token: str | None, admin_token: str | None) -> Principal:
    """The provider (or the organizer) whose key opens a connection, decided before the
    upgrade. Raises Unauthorized (401) for no key or an unknown one."""
    try:
        principal = authenticate(session, token, configured_admin=admin_token)
    except Unauthorized:
        principal = ANONYMOUS
    if principal.anonymous:
        raise Unauthorized(
            "no API key or an unknown one: connect with Authorization: Bearer <the "
            "provider's key> (--key or RECOGHUB_API_KEY)"
        )
    return principal


def admit(session: Session, *, principal: Principal, hello: Hello) -> Admitted:
    """Decide a hello of an authenticated caller: the owning provider (or the organizer)
    may connect an enabled service. Raises Refused with the close code of SPEC §10."""
    try:
        service = get_service(session, guid=hello.service_guid)
    except WrongGuidKind:
        raise Refused(
            frames.UNKNOWN_SERVICE,
            f"{hello.service_guid:.40} is a provider GUID; give --service a service GUID",
        ) from None
    except (NotFound, ValueError):
        raise Refused(
            frames.UNKNOWN_SERVICE,
            f"no service {hello.service_guid:.40}; check --service (recoghub-cli service show)",
        ) from None
    if not principal.may_act_for(service.provider_id):
        raise Refused(
            frames.OTHER_PROVIDER,
            f"service {service.guid} is another provider's; connect one of your own",
        )
    if not service.enabled:
        raise Refused(
            frames.SERVICE_DISABLED,
            f"service {service.guid} is disabled; enable it (recoghub-cli service enable)",
        )
    return Admitted(service.guid, min(hello.max_concurrency, service.max_concurrency))


def hub_id(worker_id: str) -> str:
    """An opaque name of a dispatching process: its worker id names the machine
    (host-pid-random), which recognizers have no business knowing (SPEC §10)."""
    return hashlib.sha256(worker_id.encode()).hexdigest()[:16]


def live_hubs(session: Session, *, live_since: datetime) -> list[dict[str, str]]:
    """Every dispatching process alive since `live_since` that recognizers can reach:
    `{"hub_id", "url"}` (`hub_id` as the welcome names its own process), oldest first."""
    rows = session.execute(
        select(Worker.id, Worker.public_url)
        .where(Worker.public_url.is_not(None), Worker.heartbeat_at >= live_since)
        .order_by(Worker.started_at, Worker.id)
    ).all()
    return [{"hub_id": hub_id(worker_id), "url": url} for worker_id, url in rows if url]

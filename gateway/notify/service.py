"""A provider's notification URL and secret, and the test event (keyword-only service
functions; the routes are in gateway.notify.routes)."""

import secrets

from sqlalchemy.orm import Session

from gateway.db import utcnow
from gateway.dispatch.client import HttpClient
from gateway.dispatch.policy import EndpointPolicy
from gateway.errors import Conflict
from gateway.notify.delivery import Answer, encode, post_event
from gateway.registry.models import Provider
from gateway.registry.service import check_endpoint_addresses
from gateway.runs.exports import iso


def new_notification_secret() -> str:
    return secrets.token_urlsafe(32)


def set_notification_url(
    session: Session, *, provider: Provider, url: str | None, policy: EndpointPolicy
) -> str | None:
    """Set (or with None clear) where the provider's events go; returns the secret when
    this call made one (the first URL set: it is shown then), else None.

    Raises InvalidInput (`endpoint_not_allowed`) for a literal address the policy refuses,
    naming the setting that allows it.
    """
    if url is not None:
        check_endpoint_addresses([url], policy=policy)
    provider.notification_url = url
    made = None
    if url is not None and provider.notification_secret is None:
        made = provider.notification_secret = new_notification_secret()
    session.commit()
    return made


def rotate_notification_secret(session: Session, *, provider: Provider) -> str:
    """A new secret for the provider's events, effective at once (a delivery still being
    retried is signed with it); returns it, to be shown once."""
    provider.notification_secret = new_notification_secret()
    session.commit()
    return provider.notification_secret


async def send_test_event(
    http: HttpClient, *, provider: Provider, timeout_s: float
) -> tuple[str, Answer]:
    """Post one `test` event to the provider's URL now, outside the outbox, and return
    the URL and how the receiver answered. Raises Conflict when no URL is set."""
    url = provider.notification_url
    if url is None:
        raise Conflict(
            f"provider {provider.guid} has no notification URL; set one first "
            '(PATCH /api/v1/providers/{guid} {"notification_url": ...}, '
            "or recoghub-cli notify set URL)"
        )
    at = utcnow()
    body = {
        "event": "test",
        "id": f"test:{provider.guid}:{iso(at)}",
        "at": iso(at),
        "provider_guid": provider.guid,
        "provider_name": provider.name,
    }
    answer = await post_event(
        http,
        url=url,
        body=encode(body),
        kind="test",
        request_id=f"notification-test-{secrets.token_hex(8)}",
        secret=provider.notification_secret,
        timeout_s=timeout_s,
    )
    return url, answer

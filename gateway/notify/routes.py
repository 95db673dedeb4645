"""A provider's notifications: `PATCH /providers/{guid}` (the URL),
`POST /providers/{guid}/notification-secret` (rotate) and
`POST /providers/{guid}/notification-test` (post a `test` event now). The organizer may
act for any provider, a provider for itself."""

import asyncio

from fastapi import APIRouter, Request

from gateway import rate_limit
from gateway.deps import CallerDep, HubStateDep, SessionDep, bearer_token
from gateway.dispatch.policy import endpoint_policy
from gateway.notify import service as notify
from gateway.notify.schemas import (
    NotificationSecretRead,
    NotificationTestRead,
    ProviderNotifyRead,
    ProviderUpdate,
)
from gateway.openapi import errors
from gateway.registry import service as registry

router = APIRouter(prefix="/providers", tags=["providers"])


@router.patch("/{guid}", responses=errors(400, 401, 403, 404, 413, 422))
def update_provider(
    guid: str, data: ProviderUpdate, session: SessionDep, principal: CallerDep, state: HubStateDep
) -> ProviderNotifyRead:
    """Set or clear the provider's notification URL (a webhook, checked like a service
    endpoint: 422 `endpoint_not_allowed` for a refused address). The first URL set makes
    the signing secret, shown in this answer only."""
    provider = registry.get_provider_for(session, principal=principal, guid=guid)
    made = notify.set_notification_url(
        session,
        provider=provider,
        url=data.notification_url,
        policy=endpoint_policy(state.settings.endpoint_allow),
    )
    return ProviderNotifyRead.of(provider, notification_secret=made)


@router.post("/{guid}/notification-secret", responses=errors(401, 403, 404))
def rotate_notification_secret(
    guid: str, session: SessionDep, principal: CallerDep
) -> NotificationSecretRead:
    """A new secret for the provider's events, shown only now; the old one stops at once."""
    provider = registry.get_provider_for(session, principal=principal, guid=guid)
    notify.rotate_notification_secret(session, provider=provider)
    return NotificationSecretRead.of(provider)


@router.post("/{guid}/notification-test", responses=errors(401, 403, 404, 409, 429))
async def test_notification(
    guid: str, request: Request, session: SessionDep, principal: CallerDep, state: HubStateDep
) -> NotificationTestRead:
    """Post one signed `test` event to the provider's URL now and say how it answered
    (rate-limited like `check`)."""
    provider = await asyncio.to_thread(
        registry.get_provider_for, session, principal=principal, guid=guid
    )
    await rate_limit.admit(state, "check", token=bearer_token(request.headers) or "")
    url, answer = await notify.send_test_event(
        state.http, provider=provider, timeout_s=state.settings.notify_timeout_s
    )
    return NotificationTestRead(
        url=url,
        delivered=answer.delivered,
        status=answer.status,
        detail=None if answer.delivered else answer.describe(),
    )

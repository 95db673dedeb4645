"""Rate limits per API key and hub process on relay and check (SPEC §9).

Each API key has a token bucket per limited route: `burst` requests at once, refilled
at `rate` a second (`RECOGHUB_RELAY_RATE`/`_BURST`, `RECOGHUB_CHECK_RATE`/`_BURST`;
rate 0 turns a limit off). A request past it is 429 with `Retry-After`, the whole
seconds until the next one is allowed. The organizer's token is never limited.

Buckets are kept per hub process, so N processes behind one address allow N times the
rate. Only callers the relay has already authenticated reach a bucket: the table grows
with the providers, not with what strangers send.
"""

import functools
from typing import Literal

from starlette.concurrency import run_in_threadpool

from gateway.auth import ADMIN_SECRET_NAME, hash_token
from gateway.registry.models import HubSecret
from gateway.state import HubState
from gateway.token_bucket import RateLimiter

ApiRoute = Literal["relay", "check"]  # the connect route's limiters: gateway.dialout.limits


def limiter(state: HubState, route: ApiRoute) -> RateLimiter:
    """The hub's limiter of `route` (one per hub app)."""
    found = state.rate_limiters.get(route)
    if found is not None:
        return found
    settings = state.settings
    rate, burst = (
        (settings.relay_rate, settings.relay_burst)
        if route == "relay"
        else (settings.check_rate, settings.check_burst)
    )
    made = RateLimiter(route=route, rate=rate, burst=burst)
    state.rate_limiters[route] = made
    return made


def _stored_admin_digest(state: HubState) -> str | None:
    with state.sessions() as session:
        secret = session.get(HubSecret, ADMIN_SECRET_NAME)
        return secret.value_hash if secret is not None else None


@functools.lru_cache(maxsize=8)
def _configured_admin_digest(admin_token: str) -> str:
    """The hash of the admin token the settings hold (they hold it for the process's life)."""
    return hash_token(admin_token)


async def _admin_digest(state: HubState) -> str | None:
    """The hash of the organizer's token: from settings, or read once from the database."""
    if state.settings.admin_token is not None:
        return _configured_admin_digest(state.settings.admin_token)
    if not state.stored_admin_digest_read:
        state.stored_admin_digest = await run_in_threadpool(_stored_admin_digest, state)
        state.stored_admin_digest_read = True
    return state.stored_admin_digest


async def admit(state: HubState, route: ApiRoute, *, token: str, digest: str | None = None) -> None:
    """Count one `route` request of the caller with `token` (already authenticated;
    `digest`: its `hash_token`, when the caller has it already).

    Raises RateLimited (429) past the caller's limit; the organizer is not limited.
    """
    digest = digest or hash_token(token)
    if digest == await _admin_digest(state):
        return
    limiter(state, route).take(digest)

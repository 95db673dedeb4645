"""Rate limits per API key and hub process on relay and check (SPEC §9).

Each API key has a token bucket per limited route: `burst` requests at once, refilled
at `rate` a second (`RECOGHUB_RELAY_RATE`/`_BURST`, `RECOGHUB_CHECK_RATE`/`_BURST`;
rate 0 turns a limit off). A request past it is 429 with `Retry-After`, the whole
seconds until the next one is allowed. The organizer's token is never limited.

Buckets are kept per hub process, so N processes behind one address allow N times the
rate. Only callers the relay has already authenticated reach a bucket: the table grows
with the providers, not with what strangers send.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from starlette.concurrency import run_in_threadpool

from gateway.auth import ADMIN_SECRET_NAME, hash_token
from gateway.errors import RateLimited
from gateway.registry.models import HubSecret
from gateway.state import HubState

Route = Literal["relay", "check", "connect"]
ApiRoute = Literal["relay", "check"]  # the connect route's limiters: gateway.dialout.limits
MAX_KEYS = 10_000


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: int
    tokens: float
    updated: float

    def _refill(self, now: float) -> None:
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self, now: float) -> float:
        """Take one token: 0.0, or (taking nothing) the seconds until one is there."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def spend(self, now: float, cost: float) -> float:
        """Spend `cost` tokens even when short (a debt, paid by waiting): 0.0, or the
        seconds until the bucket is out of debt."""
        self._refill(now)
        self.tokens -= cost
        return 0.0 if self.tokens >= 0.0 else -self.tokens / self.rate

    def full_at(self, now: float) -> bool:
        return self.tokens + (now - self.updated) * self.rate >= self.burst


class RateLimiter:
    """Token buckets of one route, by key. Used from the event loop's thread only."""

    def __init__(
        self,
        *,
        route: Route,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
        per: str = "API key",
        setting: str | None = None,
    ) -> None:
        self.route = route
        self.per = per
        self.setting = setting or f"RECOGHUB_{route.upper()}_RATE"
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def __len__(self) -> int:
        """How many keys have a bucket."""
        return len(self._buckets)

    def take(self, key: str) -> None:
        """Count one request of `key`; raises RateLimited past the limit."""
        if self.rate <= 0:
            return
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self.burst, now)
        wait_s = bucket.take(now)
        if wait_s > 0:
            raise RateLimited(
                f"too many {self.route} requests for this {self.per}: the hub allows "
                f"{self.rate:g} a second (bursts of {self.burst}, {self.setting}); "
                "wait for Retry-After seconds",
                retry_after_s=wait_s,
            )

    def _make_room(self, now: float) -> None:
        # A full bucket is the same as none: dropping those forgets nothing.
        if len(self._buckets) >= self.max_keys:
            self._buckets = {k: b for k, b in self._buckets.items() if not b.full_at(now)}
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()


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


async def _admin_digest(state: HubState) -> str | None:
    """The hash of the organizer's token: from settings, or read once from the database."""
    if state.settings.admin_token is not None:
        return hash_token(state.settings.admin_token)
    if not state.stored_admin_digest_read:
        state.stored_admin_digest = await run_in_threadpool(_stored_admin_digest, state)
        state.stored_admin_digest_read = True
    return state.stored_admin_digest


async def admit(state: HubState, route: ApiRoute, *, token: str) -> None:
    """Count one `route` request of the caller with `token` (already authenticated).

    Raises RateLimited (429) past the caller's limit; the organizer is not limited.
    """
    digest = hash_token(token)
    if digest == await _admin_digest(state):
        return
    limiter(state, route).take(digest)

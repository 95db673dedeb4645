"""Token buckets by key: the rate limits of the relay, check and connect routes
(SPEC §9), kept apart from the hub's state so that the state can hold them."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gateway.errors import RateLimited

Route = Literal["relay", "check", "connect"]

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

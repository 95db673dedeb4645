"""What dial-out connections may cost one hub process (SPEC §10).

- `ConnectLimits`: upgrades per client address and per presented API key (token buckets,
  checked before the key is looked up: each upgrade costs an authentication), and caps on
  connections per service, per provider and in all, held from before the upgrade (the
  provider and the whole process) or from the hello (the service) until the connection
  ends.
- `Reader`: the budget of one connection's incoming messages: a token bucket (past it
  the hub stops reading the connection for a while, so TCP slows the sender down) and
  a count of results for requests it was never sent, past which it is closed.

Everything here runs on the event loop's thread only.
"""

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from gateway.auth import Principal, hash_token
from gateway.config import Settings
from gateway.errors import TooManyConnections
from gateway.token_bucket import RateLimiter, TokenBucket

# A message costs one token per started 16 KiB: a 390 KB message is not one small result.
MESSAGE_COST_BYTES = 16 * 1024


class CapReached(Exception):
    """A connection past a cap; `reason` (a close reason) says which and what to do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Held:
    """The cap counters one connection holds until it ends."""

    keys: tuple[str, ...]


class ConnectLimits:
    """The connect route's rate limits and connection caps of one hub process."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._by_address = RateLimiter(
            route="connect",
            rate=settings.connect_address_rate,
            burst=settings.connect_address_burst,
            clock=clock,
            per="client address",
            setting="RECOGHUB_CONNECT_ADDRESS_RATE",
        )
        self._by_key = RateLimiter(
            route="connect",
            rate=settings.connect_rate,
            burst=settings.connect_burst,
            clock=clock,
        )
        self._counts: Counter[str] = Counter()

    def count(self, key: str) -> int:
        """Connections holding `key` ("all", "provider:<id>", "service:<guid>")."""
        return self._counts[key]

    def take_upgrade(self, *, address: str | None, token: str | None) -> None:
        """Count one upgrade; raises RateLimited past the address's or the key's bucket."""
        self._by_address.take(address or "unknown")
        if token:
            self._by_key.take(hash_token(token))

    def hold_process(self, principal: Principal) -> Held:
        """The process-wide and the provider's caps, before the upgrade; raises
        TooManyConnections (429). The organizer has no provider cap."""
        settings = self.settings
        caps = [("all", settings.dialout_connections_max, "this hub process")]
        if principal.provider_id is not None:
            caps.append(
                (
                    f"provider:{principal.provider_id}",
                    settings.dialout_connections_per_provider,
                    "your provider",
                )
            )
        for key, cap, whose in caps:
            if self._counts[key] >= cap:
                setting = (
                    "RECOGHUB_DIALOUT_CONNECTIONS_MAX"
                    if key == "all"
                    else "RECOGHUB_DIALOUT_CONNECTIONS_PER_PROVIDER"
                )
                raise TooManyConnections(
                    f"{whose} already has {cap} dial-out connections to this hub process, "
                    f"the most the organizer allows ({setting}); close one or try later"
                )
        return self._hold(tuple(key for key, _, _ in caps))

    def hold_service(self, service_guid: str) -> Held:
        """The service's cap, once its hello is admitted; raises CapReached."""
        key, cap = f"service:{service_guid}", self.settings.dialout_connections_per_service
        if self._counts[key] >= cap:
            raise CapReached(
                f"service has {cap} connections to this hub process already "
                "(RECOGHUB_DIALOUT_CONNECTIONS_PER_SERVICE); stop one or try later"
            )
        return self._hold((key,))

    def _hold(self, keys: tuple[str, ...]) -> Held:
        for key in keys:
            self._counts[key] += 1
        return Held(keys)

    def release(self, held: Held) -> None:
        for key in held.keys:
            self._counts[key] -= 1
            if self._counts[key] <= 0:
                del self._counts[key]

    def reader(self) -> "Reader":
        return Reader(
            rate=self.settings.dialout_message_rate,
            strays_allowed=self.settings.dialout_stray_results,
        )


class Reader:
    """The budget of one connection's incoming messages."""

    def __init__(
        self,
        *,
        rate: float,
        strays_allowed: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        burst = max(1, int(rate))  # a second's worth at once
        self._bucket = TokenBucket(rate, burst, float(burst), clock()) if rate > 0 else None
        self._clock = clock
        self.strays_allowed = strays_allowed
        self.strays = 0

    def wait_s(self, size: int) -> float:
        """Seconds to wait before reading on after a message of `size` bytes (0.0: at
        once)."""
        if self._bucket is None:
            return 0.0
        return self._bucket.spend(self._clock(), 1 + size // MESSAGE_COST_BYTES)

    def stray(self) -> str | None:
        """Count a result for a request the connection was never sent (or already
        answered); the close reason once past the allowed number, else None."""
        self.strays += 1
        if self.strays <= self.strays_allowed:
            return None
        return (
            f"{self.strays} results for requests this connection was never sent or that "
            "were already answered (RECOGHUB_DIALOUT_STRAY_RESULTS)"
        )

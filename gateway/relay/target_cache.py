"""The relay's short-lived cache of look-ups: which target a token may send to."""

import asyncio
import time

from gateway.dispatch.answers import Target

TARGET_TTL_S = 2.0
TARGET_CACHE_ENTRIES = 4096


class TargetCache:
    """(token digest, service GUID) -> Target, each for `ttl_s` seconds.

    Read and filled from the event loop's thread; `clear` may come from a threadpool
    route. A target read from the database before a `clear` must never be served after
    it (a relay in flight while the service is deleted would otherwise cache it again),
    so each entry carries the generation its look-up started in, and `clear` starts a
    new one: no lock needed.
    """

    def __init__(self, ttl_s: float = TARGET_TTL_S, max_entries: int = TARGET_CACHE_ENTRIES):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.generation = 0
        self._entries: dict[tuple[str, str], tuple[float, int, Target]] = {}
        # The database look-ups under way, by (token digest, GUID, generation): requests
        # that miss together share one (`gateway.relay.service.relay_target`).
        self.lookups: dict[tuple[str, str, int], asyncio.Future[Target]] = {}

    def get(self, token_digest: str, guid: str) -> Target | None:
        entry = self._entries.get((token_digest, guid))
        if entry is None:
            return None
        expires, generation, target = entry
        if generation != self.generation or time.monotonic() >= expires:
            self._entries.pop((token_digest, guid), None)
            return None
        return target

    def put(
        self, token_digest: str, guid: str, target: Target, *, generation: int | None = None
    ) -> None:
        """Keep `target`; `generation` is `self.generation` as it was before the look-up."""
        now = time.monotonic()
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        if generation is None:
            generation = self.generation
        self._entries[(token_digest, guid)] = (now + self.ttl_s, generation, target)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

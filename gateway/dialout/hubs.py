"""The live dispatching processes, as every connection of one hub process tells its
recognizer (SPEC §10): looked up at most once per period for all connections together,
so a thousand connections cost one database query every 10 s, not a thousand."""

import asyncio
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

HubList = list[dict[str, str]]


class HubsCache:
    """`get()` answers the last lookup while it is younger than `max_age_s()`; callers
    arriving during a lookup wait for that one instead of starting their own."""

    def __init__(
        self,
        lookup: Callable[[], HubList],
        *,
        max_age_s: Callable[[], float],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup  # blocking (a database query): run in a thread
        self._max_age_s = max_age_s  # read at each call, so a test may shorten it
        self._clock = clock
        self._value: HubList | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()
        self.lookups = 0

    async def get(self) -> HubList:
        if self._fresh():
            assert self._value is not None
            return self._value
        async with self._lock:
            if not self._fresh():  # another caller may have looked up meanwhile
                self._value = await run_in_threadpool(self._lookup)
                self._at = self._clock()
                self.lookups += 1
            assert self._value is not None
            return self._value

    def _fresh(self) -> bool:
        return self._value is not None and self._clock() - self._at < self._max_age_s()

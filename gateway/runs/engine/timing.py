"""The hub's own timing uncertainty while it sends (SPEC §8, latency fidelity).

A recorded latency runs from sending a request to the event loop handling its answer.
When the loop is busy (claiming, writing results, scoring, the GIL held by a database
thread) an answer that has arrived waits in its socket, and that wait would be counted
as the team's. `LoopLag` measures it: a sentinel task asks to wake every few
milliseconds and notes how late it woke. Once a second (`LagFollower`, from the worker's
survey tick) the worker takes the lag of that window; `InFlightLimit` lowers the requests
the worker has in flight while the window's p99 passes the bound and raises them back
once it is well under; and each run that was sending records the worst window p99 it saw
(`runs.timing_uncertainty_ms`), which the API, the leaderboard and the dashboard show
beside the latency figures.
"""

import asyncio
import collections
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy import Connection, case, update

from gateway.metrics import IN_FLIGHT_LIMIT, LOOP_LAG
from gateway.runs.engine.threads import Database
from gateway.runs.models import Run

# The sentinel's period: short enough to see a few milliseconds of delay, long enough to
# cost nothing (about 200 wake-ups a second).
SAMPLE_EVERY_S = 0.005
# The window of the event loop's lateness that the in-flight limit follows and runs record.
LAG_WINDOW_S = 1.0


async def wait_event(event: asyncio.Event, timeout_s: float) -> None:
    """Wait until `event` is set or `timeout_s` passes.

    Not `asyncio.wait_for`: on Python 3.11 it can swallow a cancellation that arrives as
    the event is set, and a loop that misses its cancel keeps a stopping worker alive.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await event.wait()


def wake(waiters: "collections.deque[asyncio.Future[None]]", count: int = 1) -> None:
    """Wake the first `count` of `waiters` still waiting (those cancelled are dropped)."""
    while count > 0 and waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            count -= 1


@dataclass(frozen=True, slots=True)
class LagWindow:
    """How late the loop woke during one window, in milliseconds. The percentiles are of
    time, not of samples: an answer arriving at a random moment of the window waited at
    most `p99_ms` for the loop, 99 times in 100 (one 80 ms stall in a second is p99 80)."""

    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class LoopLag:
    """Samples how late the running event loop wakes a sleeping task."""

    def __init__(self, *, every_s: float = SAMPLE_EVERY_S) -> None:
        self.every_s = every_s
        self._late_ms: list[float] = []

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.every_s)
            late = (time.perf_counter() - started - self.every_s) * 1000.0
            self._late_ms.append(max(0.0, late))

    def take(self) -> LagWindow | None:
        """The window since the last call (None if nothing was sampled), and a new one."""
        late, self._late_ms = sorted(self._late_ms), []
        if not late:
            return None
        # A sample late by L stands for the every_s + L of time it took.
        weights = [self.every_s * 1000.0 + x for x in late]
        total = sum(weights)

        def at(q: float) -> float:
            running = 0.0
            for value, weight in zip(late, weights, strict=True):
                running += weight
                if running >= q * total:
                    return value
            return late[-1]

        return LagWindow(samples=len(late), p50_ms=at(0.5), p99_ms=at(0.99), max_ms=late[-1])


class InFlightLimit:
    """A bound on the worker's requests in flight that moves with the loop's lag:
    down by a quarter while a window's p99 passes `bound_ms`, back up by a sixteenth of
    `maximum` per window once it is under half of it.

    A request takes a place with `enter_now()` (under the limit: no coroutine, no lock,
    as most do) or else `await enter()`, and gives it back with `leave()`; or `async
    with limit:`."""

    def __init__(self, *, maximum: int, bound_ms: float, floor: int = 4) -> None:
        self.maximum = maximum
        self.bound_ms = bound_ms
        self.floor = min(floor, maximum)
        self.limit = maximum
        IN_FLIGHT_LIMIT.set(maximum)
        self.in_flight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def enter_now(self) -> bool:
        """Take a place if one is free now."""
        if self.in_flight < self.limit:
            self.in_flight += 1
            return True
        return False

    async def enter(self) -> None:
        """Take a place, waiting until one is free."""
        while self.in_flight >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake(1)  # woken, then cancelled: the place goes to the next
                else:
                    with contextlib.suppress(ValueError):  # already taken off by `_wake`
                        self._waiters.remove(waiter)
                raise
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if self._waiters:
            self._wake(1)

    def _wake(self, count: int) -> None:
        """Wake up to `count` waiters; each checks again for a free place."""
        wake(self._waiters, count)

    async def __aenter__(self) -> None:
        if not self.enter_now():
            await self.enter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.leave()

    async def adjust(self, window: LagWindow | None) -> None:
        """Follow the lag of the window just ended (the bound 0 turns this off)."""
        if window is None:
            return
        LOOP_LAG.set(window.p99_ms / 1000.0)
        if self.bound_ms <= 0:
            return
        if window.p99_ms > self.bound_ms:
            limit = max(self.floor, self.limit * 3 // 4)
        elif window.p99_ms < self.bound_ms / 2:
            limit = min(self.maximum, self.limit + max(1, self.maximum // 16))
        else:
            return
        if limit != self.limit:
            self.limit = limit
            self._wake(len(self._waiters))
            IN_FLIGHT_LIMIT.set(limit)


def record_uncertainty(conn: Connection, *, run_ids: Iterable[int], lag_ms: float) -> None:
    """Raise each run's recorded timing uncertainty to `lag_ms` if it is higher (several
    workers may send one run: the worst of them is kept)."""
    ids = sorted(set(run_ids))
    if not ids:
        return
    column = Run.timing_uncertainty_ms
    conn.execute(
        update(Run)
        .where(Run.id.in_(ids))
        .values(
            timing_uncertainty_ms=case(
                (column.is_(None), lag_ms), (column < lag_ms, lag_ms), else_=column
            )
        )
    )


class LagFollower:
    """The worker's requests in flight (`in_flight`), fitted to how late its loop runs,
    and the runs it sent to since the last window, which record that lateness."""

    def __init__(self, *, db: Database, in_flight: InFlightLimit) -> None:
        self._db = db
        self.in_flight = in_flight
        self.lag = LoopLag()
        self._taken = time.monotonic()
        self.sent_runs: set[int] = set()  # runs sent to since the lag was last taken

    def due(self) -> bool:
        """A window has passed since the lag was last taken."""
        return time.monotonic() - self._taken >= LAG_WINDOW_S

    async def follow(self) -> None:
        """Once a second, and when a lane ends: fit the requests in flight to how late the
        loop ran, and record that lateness on the runs sent to meanwhile (SPEC §8)."""
        window = self.lag.take()
        self._taken = time.monotonic()
        await self.in_flight.adjust(window)
        sent, self.sent_runs = self.sent_runs, set()
        if window is not None and sent:
            await self._db.cold(record_uncertainty, run_ids=sent, lag_ms=window.p99_ms)

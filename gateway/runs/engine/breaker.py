"""The dead-service breaker of runs (SPEC §9): a service that stopped answering pauses
instead of burning every remaining image's attempts, and resumes when it is back.

- A lane counts its consecutive `connect_error`/`timeout` outcomes (`FailureStreak`) and
  holds their results back: after `RECOGHUB_BREAKER_FAILURES` of them in a row it trips.
  If the lane had reached the service before, the held items go back to `pending` (the
  service went away: they are sent again once it is back); if it never had, they are
  recorded as they are, so that a service whose `/ping` answers while `/recognize` fails
  still moves through its items instead of pausing and resuming forever.
- Tripping sets the run service `down` (with the last error as its reason). Every worker's
  survey then stops that lane and claims nothing of it.
- One worker probes a `down` service (`engine.prober`): the one that leases its
  slot 0 (the *probe lease*, renewed by the heartbeat like any slot lease; a dead
  prober's lease expires and another worker takes over, counting the give-up time
  afresh). It pings `/ping` on a doubling back-off (`ProbeSchedule`); at the first 200
  the service is `ongoing` again and every worker reopens its lane. Down longer than
  `RECOGHUB_BREAKER_GIVE_UP_S`, its remaining items are recorded `unreachable` without
  being sent and the service fails.

The functions taking a `Connection` run inside a transaction, like `engine.store`'s.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import Connection

from gateway.errors import Outcome
from gateway.notify.downtimes import record_down, record_up
from gateway.runs import lifecycle
from gateway.runs.finish import service_scores
from gateway.runs.results import record_unsent

T = TypeVar("T")

# Outcomes that say nothing answered: the ones that count towards a trip.
SILENT = frozenset({Outcome.CONNECT_ERROR.value, Outcome.TIMEOUT.value})


class FailureStreak(Generic[T]):
    """One lane's consecutive silent outcomes, with their results held back until the
    streak breaks (they are then the team's own failures) or trips the breaker."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # 0: never trips
        self.held: list[T] = []
        self.last_error: str | None = None
        self.reached = False  # some request of this lane got an answer
        self.tripped = False

    def add(self, outcome: str, detail: str | None, result: T) -> list[T]:
        """Count one result; returns the results that are final now."""
        if self.limit and outcome in SILENT:
            self.held.append(result)
            self.last_error = f"{outcome}: {detail}" if detail else outcome
            if len(self.held) >= self.limit:
                self.tripped = True
            return []
        self.reached = True
        if not self.held:
            return [result]
        settled, self.held = [*self.held, result], []
        return settled

    def take(self) -> list[T]:
        """The held results, now the caller's (to record or to give back)."""
        held, self.held = self.held, []
        return held

    def reason(self) -> str:
        return (
            f"down: {self.limit} requests in a row got no answer, the last {self.last_error}; "
            "the hub probes /ping and resumes when it answers"
        )


class ProbeSchedule:
    """When to probe a down service: after `first_s`, doubling up to `max_s`, until it
    has been down for `give_up_s` (counted from this schedule's creation)."""

    def __init__(
        self,
        *,
        first_s: float,
        max_s: float,
        give_up_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._next = first_s
        self._max = max_s
        self.give_up_s = give_up_s
        self.deadline = clock() + give_up_s

    def next_delay(self) -> float | None:
        """Seconds to wait before the next probe (the last one falls on the give-up
        time), or None once the give-up time has passed."""
        left = self.deadline - self._clock()
        if left <= 0:
            return None
        delay = min(self._next, self._max, left)
        self._next = min(2 * self._next, self._max)
        return delay


async def probe(ping: Callable[[], Awaitable[str | None]], schedule: ProbeSchedule) -> str | None:
    """Call `ping` (None when the service answered, else the error) on the schedule until
    it answers; returns None then, or the last error once the schedule gives up."""
    error = "not probed before the give-up time"
    while (delay := schedule.next_delay()) is not None:
        await asyncio.sleep(delay)
        answer = await ping()
        if answer is None:
            return None
        error = answer
    return error


# The database side


def mark_down(conn: Connection, *, run_service_id: int, reason: str) -> bool:
    """Pause an open run service; False if it was not open (already down, or final)."""
    down = lifecycle.services.mark_down(conn, run_service_id=run_service_id, reason=reason)
    if down:
        record_down(conn, run_service_id=run_service_id, reason=reason)  # told, and charted
    return down


def resume(conn: Connection, *, run_service_id: int, worker_id: str, slot_id: int) -> None:
    """The service answered its probe: open it again (every worker's next survey reopens
    its lane) and hand back the probe lease."""
    if lifecycle.services.mark_up(conn, run_service_id=run_service_id):
        record_up(conn, run_service_id=run_service_id)
    lifecycle.slots.release(conn, worker_id=worker_id, slot_ids=[slot_id])


def give_up(
    conn: Connection,
    *,
    run_service_id: int,
    worker_id: str,
    slot_id: int,
    give_up_s: float,
    last_error: str,
    now: datetime,
) -> int:
    """The service stayed down past the give-up time: record each of its unrecorded items
    `unreachable` without sending it, score it and fail it with that reason. Returns the
    items recorded so (0 if the service was no longer down)."""
    if not lifecycle.services.hold_down(conn, run_service_id=run_service_id):
        lifecycle.slots.release(conn, worker_id=worker_id, slot_ids=[slot_id])
        return 0
    detail = f"not sent: the service was down for more than {give_up_s:g} s"
    # Leased items too: by now their workers have stopped this lane, and a late result of
    # one is refused by the lease check of `record_results`.
    unsent = record_unsent(
        conn,
        run_service_id=run_service_id,
        outcome=Outcome.UNREACHABLE.value,
        detail=detail,
        now=now,
    )
    reason = (
        f"unreachable: down for more than {give_up_s:g} s, {unsent} images recorded "
        f"unreachable without being sent; last error: {last_error}"
    )
    lifecycle.services.fail_down(
        conn,
        run_service_id=run_service_id,
        reason=reason,
        scores=service_scores(conn, run_service_id=run_service_id),
    )
    lifecycle.slots.release(conn, worker_id=worker_id, slot_ids=[slot_id])
    return unsent

"""Lanes: each open run service as a worker sends it, with its queue of claimed items, its
consumers (one per leased slot), its buffer sizing and whether it is scored live; and `Lanes`, the
worker's open and draining lanes, which stops, pauses and gives back their items.
"""

import asyncio
import collections
import contextlib
import itertools
import logging
import math
from dataclasses import dataclass
from datetime import datetime

from gateway.db import from_epoch_us
from gateway.dispatch.answers import Target
from gateway.runs import lifecycle
from gateway.runs.engine import breaker
from gateway.runs.engine.breaker import FailureStreak
from gateway.runs.engine.images import ImageCache
from gateway.runs.engine.store import LanePlan
from gateway.runs.engine.threads import Database
from gateway.runs.engine.timing import wake
from gateway.runs.models import ServiceStatus
from gateway.runs.records import FINISHED_AT, ITEM_ID, Row

log = logging.getLogger("recoghub.worker")

# A lane's buffer holds about this many seconds of its throughput (at least 2 per slot).
BUFFER_HORIZON_S = 0.5
MAX_BUFFER = 1000
_SERIALS = itertools.count(1)


# A result waiting to be written (a `ResultRecord` as a row), with the lane it belongs to.
Pending = tuple["Lane", Row]


@dataclass(slots=True)
class Claim:
    item_id: int
    image_id: int
    claimed_at: float  # monotonic


class ClaimQueue:
    """A lane's buffer: its claimed items in order (None: a consumer is to leave), taken by
    its consumers. An asyncio.Queue without the bound and the task counting, whose steps
    cost the sender on every item."""

    __slots__ = ("_items", "_getters")

    def __init__(self) -> None:
        self._items: collections.deque[Claim | None] = collections.deque()
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Claim | None) -> None:
        self._items.append(item)
        if self._getters:
            wake(self._getters)

    def get_nowait(self) -> Claim | None:
        """The next item; IndexError if there is none."""
        return self._items.popleft()

    async def get(self) -> Claim | None:
        """The next item, once there is one."""
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                with contextlib.suppress(ValueError):  # already taken off by `wake`
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    wake(self._getters)  # woken, then cancelled: the item goes to the next
                raise
        return self._items.popleft()


class Lane:
    """One run service as this worker sends it."""

    def __init__(self, plan: LanePlan, *, breaker_failures: int = 0) -> None:
        self.plan = plan
        self.id = plan.run_service_id
        self.serial = next(_SERIALS)  # names its live scorer (engine.recording)
        self.queue = ClaimQueue()
        self.buffered = 0
        self.consumers: dict[int, asyncio.Task[None]] = {}  # slot id -> consumer
        self.retiring = 0
        self.in_flight = 0  # taken from the queue, result not yet queued for writing
        self.unflushed = 0  # results not written yet, those held by the streak included
        # The results of its latest silent outcomes, held back.
        self.streak: FailureStreak[Pending] = FailureStreak(breaker_failures)
        self.dry = False
        self.stopping = False
        self.ongoing = plan.status == ServiceStatus.ONGOING
        self.completed = 0
        self.rate = 0.0
        self._by_rate = 0  # the buffer its rate asks for (`tick`)
        # Doubles when consumers find the queue empty (claims too slow for this lane), at
        # once, once a claim; halves at a tick with no consumer starved since the last.
        self.boost = 0
        self.starved = False  # since the last tick
        self.boosted = False  # since the last claim
        # Its results are scored as they are recorded (where they are: engine.recording),
        # so that closing the lane needs no pass over its items; only trusted if that saw
        # them all (nothing sent before this lane, no other worker, no result lost),
        # which `finish_service` checks.
        self.scored = plan.status == ServiceStatus.PENDING
        self.first_sent: datetime | None = None
        # In microseconds since the epoch, as a sent row holds it (`result_row`).
        self.last_finished_us: int | None = None

    @property
    def target(self) -> Target:
        return self.plan.target

    def is_stopping(self) -> bool:
        """The lane is stopping (a paused service's requests in flight are not retried)."""
        return self.stopping

    @property
    def held(self) -> int:
        return len(self.consumers) - self.retiring

    def elapsed_s(self) -> float | None:
        if self.first_sent is None or self.last_finished_us is None:
            return None
        return (from_epoch_us(self.last_finished_us) - self.first_sent).total_seconds()

    @property
    def idle(self) -> bool:
        return self.buffered == 0 and self.in_flight == 0 and self.unflushed == 0

    @property
    def done_sending(self) -> bool:
        """The lane ran dry and has nothing buffered or in flight: its last results are
        queued for writing (or written)."""
        return self.dry and self.buffered == 0 and self.in_flight == 0

    def buffer_target(self) -> int:
        return min(MAX_BUFFER, max(2 * self.held, self._by_rate, self.boost))

    def wants(self) -> int:
        """How many items to claim now: refill to the target once below half of it."""
        if self.stopping or self.dry or self.held <= 0:
            return 0
        target = self.buffer_target()
        return target - self.buffered if self.buffered <= target // 2 else 0

    # The lane's counters change here alone, each step named (issue 21).

    def claimed(self, *, got: int, wanted: int) -> None:
        """A claim brought `got` of the `wanted` items: fewer means the lane ran dry; any
        means its run service is `ongoing` now."""
        if got < wanted:
            self.dry = True
        if got:
            self.ongoing = True
        self.boosted = False

    def refill(self) -> None:
        """The survey saw the lane open: claim for it again, it may have items again."""
        self.dry = False

    def enqueue(self, claim: Claim) -> None:
        """A claimed item waits in the lane's buffer."""
        self.buffered += 1
        self.queue.put_nowait(claim)

    def retire_consumer(self) -> None:
        """One consumer is to leave (the lane holds more slots than its share)."""
        self.retiring += 1
        self.queue.put_nowait(None)

    def consumer_retired(self) -> None:
        if self.retiring > 0:
            self.retiring -= 1

    def note_starved(self) -> None:
        """A consumer found the buffer empty: claims are too slow for this lane, so the
        next one is twice as large (the consumers starving on one claim count once). At
        once, not at the next tick: a run's first quarter second would be spent on the
        buffer's first size."""
        self.starved = True
        if not self.boosted:
            self.boosted = True
            self.boost = min(MAX_BUFFER, max(4 * self.held, 2 * self.boost))

    def dequeued(self) -> bool:
        """A consumer took a claimed item out of the buffer; True when the buffer is down
        to half its target (claim now)."""
        self.buffered -= 1
        return self.buffered <= self.buffer_target() // 2

    def sending(self) -> None:
        """An item is in flight until its result is queued for writing (or given back)."""
        self.in_flight += 1

    def sent(self) -> None:
        self.in_flight -= 1

    def answered(self) -> None:
        """A result is queued for writing."""
        self.completed += 1
        self.unflushed += 1

    def written(self, row: Row, *, counted: bool) -> None:
        """A queued result is written; `counted` if the whole batch was (else some lease
        was lost and only the database knows what counts: the lane's scorer is dropped)."""
        self.unflushed -= 1
        self.last_finished_us = row[FINISHED_AT]
        if not counted:
            self.scored = False

    def not_scored(self) -> None:
        """The lane's live scorer cannot be trusted (its results shared a batch with
        another lane of its run service)."""
        self.scored = False

    def tick(self, elapsed_s: float) -> None:
        """Every manager tick: measure the throughput; let the buffer shrink back when the
        lane did not starve since the last tick."""
        current = self.completed / elapsed_s if elapsed_s > 0 else 0.0
        self.completed = 0
        self.rate = current if current > self.rate else 0.7 * self.rate + 0.3 * current
        self._by_rate = math.ceil(self.rate * BUFFER_HORIZON_S)
        if not self.starved:
            self.boost //= 2
        self.starved = False


class Lanes:
    """The lanes of this worker: open ones by run service id, and stopped ones whose
    consumers are still finishing their requests (draining)."""

    def __init__(self, *, db: Database, worker_id: str, images: ImageCache) -> None:
        self._db = db
        self._worker_id = worker_id
        self._images = images
        self.open: dict[int, Lane] = {}
        self.draining: list[Lane] = []
        # Lanes this worker paused (run service id -> pause written), kept closed until a
        # survey begun after the pause was written says what the service is now.
        self.tripped: dict[int, bool] = {}
        self.closing = False  # the worker is stopping: nothing new is sent or given back

    def ids(self) -> list[int]:
        """Run services whose items this worker may hold leased."""
        return sorted({lane.id for lane in self.open.values()} | {x.id for x in self.draining})

    def stop(self, lane: Lane, *, release: bool) -> None:
        """Stop sending for a lane: unsent items go back (now, or at shutdown), its
        consumers leave after their request in flight."""
        if lane.stopping:
            return
        lane.stopping = True
        self.open.pop(lane.id, None)
        self.draining.append(lane)
        unsent: list[int] = []
        while not lane.queue.empty():
            claim = lane.queue.get_nowait()
            if claim is not None:
                unsent.append(claim.item_id)
                self._images.release(claim.image_id)
        lane.buffered = 0
        lane.retiring = 0
        unsent.extend(self.take_held(lane))
        for _ in lane.consumers:
            lane.queue.put_nowait(None)
        if unsent and release and not self.closing:
            self.give_back_later(unsent)

    def take_held(self, lane: Lane) -> list[int]:
        """The items of the results a lane's streak holds back, to be given back unsent."""
        held = lane.streak.take()
        lane.unflushed -= len(held)
        return [row[ITEM_ID] for _, row in held]

    def reap(self) -> None:
        """Forget stopped lanes with nothing left in flight."""
        self.draining = [lane for lane in self.draining if lane.consumers or not lane.idle]

    async def give_back(self, item_ids: list[int]) -> None:
        """Claimed items not sent go back to `pending`."""
        await self._db.hot(lifecycle.items.give_back, worker_id=self._worker_id, item_ids=item_ids)

    def give_back_later(self, item_ids: list[int]) -> None:
        task = asyncio.create_task(self.give_back(item_ids))
        task.add_done_callback(_log_failure)

    def trip(self, lane: Lane) -> list[Pending]:
        """Pause a lane whose service stopped answering (the breaker, SPEC §9): its held
        items go back, unless the lane never reached the service; then those failures are
        returned, to be recorded."""
        final = [] if lane.streak.reached else lane.streak.take()
        self.tripped[lane.id] = False
        self.stop(lane, release=True)
        asyncio.create_task(self._mark_down(lane))
        return final

    async def _mark_down(self, lane: Lane) -> None:
        reason = lane.streak.reason()
        try:
            await self._db.hot(breaker.mark_down, run_service_id=lane.id, reason=reason)
        except Exception:
            self.tripped.pop(lane.id, None)  # not paused: the lane opens again
            log.exception("worker %s: pausing run service %d failed", self._worker_id, lane.id)
            return
        self.tripped[lane.id] = True
        log.warning("run %d, service %s: %s", lane.plan.run_id, lane.target.service_guid, reason)


def _log_failure(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("releasing work items failed: %s", task.exception())

"""The dispatch engine: one `DispatchWorker` per process sends every run's work items.

How it works (SPEC §4):

- Each open run service is a *lane* with its own queue of claimed items and one
  consumer task per service slot the worker leases; a consumer sends one request at a
  time, so a service never has more requests in flight than the slots leased for it
  across all workers (at most its concurrency). A slow or dead service only occupies
  its own consumers: no lane waits on another.
- A manager tick (every `POLL_S`) starts queued runs, opens and closes lanes, takes this
  worker's fair share of each service's slots (ceil(k / live workers)), hands surplus
  slots back, and scores and closes lanes whose items are all recorded.
- A claimer leases the next items of lanes whose queue runs low, in `seq` order, in one
  transaction for all lanes; buffers grow with a lane's throughput.
- Results are written by one writer in batches (`result_batch_size` rows or every
  `result_flush_s`), one executemany per transaction, each row guarded by this worker's
  lease, so an item is recorded exactly once. A crash loses only unwritten results:
  their items are still leased, and are sent again once their lease is released (at once
  by the next SQLite worker, after `lease_s` on PostgreSQL).
- A heartbeat extends every lease this worker holds; if it cannot, the worker stops
  sending before its leases can expire.
- At a run's deadline its lanes stop and their requests in flight are abandoned; what
  was answered is written, the rest recorded `missed` (`gateway.runs.deadline`).
- A service that stops answering trips its lane's breaker: the lane pauses (status
  `down`), one worker probes the service and reopens it, or gives up on its items
  (`gateway.runs.breaker`).
- Once a second the worker measures how late its event loop ran, lowers its requests in
  flight while that passes `timing_bound_ms`, and records it on the runs it was sending
  (`gateway.runs.timing`): a recorded latency is exact to about that much.

All database work runs in two threads of its own (hot: claims, results, heartbeats;
cold: surveys and scoring), so the event loop keeps sending while a batch commits.
"""

import asyncio
import contextlib
import logging
import math
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine

from gateway.config import Settings
from gateway.db import utcnow
from gateway.dispatch.dispatcher import Answer, Dispatcher
from gateway.errors import Outcome
from gateway.runs import breaker, claims, deadline, finish, live_scores, timing
from gateway.runs.claims import ClaimedItem
from gateway.runs.images import ImageCache, Picture, load_pictures
from gateway.runs.lanes import Claim, Lane
from gateway.runs.prober import Prober
from gateway.runs.timing import InFlightLimit, LoopLag

log = logging.getLogger("recoghub.worker")

T = TypeVar("T")

POLL_S = 0.25
# The window of the event loop's lateness that the in-flight limit follows and runs record.
LAG_WINDOW_S = 1.0
# How long a stopping worker lets requests in flight finish before giving them back.
SHUTDOWN_GRACE_S = 3.0
# Loop-side work on a batch yields to the event loop this often, so that answers
# arriving meanwhile are read (and timed) at once.
YIELD_EVERY = 50
RAW_CHARS = 1024


async def wait_event(event: asyncio.Event, timeout_s: float) -> None:
    """Wait until `event` is set or `timeout_s` passes.

    Not `asyncio.wait_for`: on Python 3.11 it can swallow a cancellation that arrives as
    the event is set, and a loop that misses its cancel keeps a stopping worker alive.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await event.wait()


def new_worker_id() -> str:
    """host-pid-random, unique per worker process."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class DispatchWorker:
    """Sends the work items of every active run until `run(stop)` sees `stop` set."""

    def __init__(
        self,
        *,
        engine: Engine,
        dispatcher: Dispatcher,
        settings: Settings,
        exclusive: bool = False,
        worker_id: str | None = None,
        poll_s: float = POLL_S,
        public_url: str | None = None,
    ) -> None:
        self.engine = engine
        self.dispatcher = dispatcher
        self.settings = settings
        # The only worker of its database (SQLite, lock held): may free others' leases.
        self.exclusive = exclusive
        self.id = worker_id or new_worker_id()
        # Where dial-out recognizers reach this process (SPEC §10), told to them all.
        self.public_url = public_url
        self.poll_s = poll_s
        self.lanes: dict[int, Lane] = {}
        self._draining: list[Lane] = []
        self._images = ImageCache()
        # Requests in flight, fewer while the event loop runs late (gateway.runs.timing).
        self._global = InFlightLimit(
            maximum=settings.global_concurrency, bound_ms=settings.timing_bound_ms
        )
        self._lag = LoopLag()
        self._lag_taken = time.monotonic()
        self._sent_runs: set[int] = set()  # runs sent to since the lag was last taken
        self._results: list[tuple[Lane, dict[str, Any], list[str]]] = []
        self._flush_now = asyncio.Event()
        self._claim_now = asyncio.Event()
        self._slots_to_release: list[int] = []
        self._lease_deadline = 0.0
        self._closing = False
        self._hot = ThreadPoolExecutor(1, thread_name_prefix="recoghub-db")
        self._cold = ThreadPoolExecutor(1, thread_name_prefix="recoghub-db-cold")
        self._last_tick = time.monotonic()
        # Lanes this worker paused (run service id -> pause written), kept closed until a
        # survey begun after the pause was written says what the service is now.
        self._tripped: dict[int, bool] = {}
        self._prober = Prober(
            worker_id=self.id,
            settings=settings,
            dispatcher=dispatcher,
            db=self._db,
            pool=self._cold,
            release_slot=lambda slot_id: self._slots_to_release.append(slot_id),
        )
        # Request ids from a PRNG seeded once from the OS: os.urandom per request is a
        # syscall that gives up the GIL, and waits to get it back while a database
        # thread runs. Ids only need to be unique and unguessable from the data.
        self._request_ids = random.Random(secrets.randbits(128))
        self.recorded = 0

    # Database calls, off the event loop

    async def _db(self, pool: ThreadPoolExecutor, fn: Callable[..., T], /, **kwargs: Any) -> T:
        def call() -> T:
            with self.engine.begin() as conn:
                return fn(conn, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(pool, call)

    def _lane_ids(self) -> list[int]:
        """Run services whose items this worker may hold leased."""
        return sorted({lane.id for lane in self.lanes.values()} | {x.id for x in self._draining})

    def _expiry(self) -> tuple[datetime, datetime]:
        now = utcnow()
        return now, now + timedelta(seconds=self.settings.lease_s)

    # Life cycle

    async def run(self, stop: asyncio.Event) -> None:
        """Register, dispatch until `stop` is set, then stop cleanly: requests in flight
        finish (briefly), results are written, unsent items and slots are released."""
        try:
            await self._register()
        except BaseException:
            self._hot.shutdown(wait=False)
            self._cold.shutdown(wait=False)
            raise
        self._lease_deadline = time.monotonic() + 0.9 * self.settings.lease_s
        log.info("worker %s started", self.id)
        loops = [
            asyncio.create_task(self._loop(self._manage, self.poll_s), name="recoghub-manage"),
            asyncio.create_task(self._claim_loop(), name="recoghub-claim"),
            asyncio.create_task(self._lag.run(), name="recoghub-loop-lag"),
            asyncio.create_task(self._write_loop(), name="recoghub-write"),
            asyncio.create_task(
                self._loop(self._heartbeat, self.settings.heartbeat_s), name="recoghub-heartbeat"
            ),
        ]
        try:
            await stop.wait()
        finally:
            await self._shutdown(loops)

    async def _register(self) -> None:
        now, _ = self._expiry()
        if self.exclusive:
            freed = await self._db(self._hot, claims.take_over, worker_id=self.id)
            if freed:
                log.info("resuming: %d work items left leased by a stopped hub are free", freed)
        await self._db(
            self._hot,
            claims.register_worker,
            worker_id=self.id,
            host=socket.gethostname()[:200],
            pid=os.getpid(),
            now=now,
            forget_before=now - timedelta(seconds=max(3600.0, 10 * self.settings.lease_s)),
            public_url=self.public_url,
        )

    async def _shutdown(self, loops: list[asyncio.Task[None]]) -> None:
        self._closing = True
        for lane in list(self.lanes.values()):
            self._stop_lane(lane, release=False)
        consumers = [t for lane in self._draining for t in lane.consumers.values()]
        if consumers:
            _, pending = await asyncio.wait(consumers, timeout=SHUTDOWN_GRACE_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        loops.extend(self._prober.stop())
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        try:
            while self._results:
                await self._flush()
            await self._db(
                self._hot,
                claims.unregister_worker,
                worker_id=self.id,
                run_service_ids=self._lane_ids(),
            )
        except Exception:
            log.exception(
                "worker %s could not release its leases; they expire by themselves", self.id
            )
        finally:
            # Wait for the database threads: a call still running would otherwise keep its
            # connection past the engine's disposal.
            await asyncio.to_thread(self._hot.shutdown, True)
            await asyncio.to_thread(self._cold.shutdown, True)
        log.info("worker %s stopped after recording %d results", self.id, self.recorded)

    async def _loop(self, step: Callable[[], Any], every_s: float) -> None:
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker %s: %s failed; retrying", self.id, step.__name__)
            await asyncio.sleep(every_s)

    # Heartbeat

    async def _heartbeat(self) -> None:
        started = time.monotonic()
        now, expires = self._expiry()
        await self._db(
            self._hot,
            claims.heartbeat,
            worker_id=self.id,
            run_service_ids=self._lane_ids(),
            now=now,
            expires=expires,
        )
        self._lease_deadline = started + 0.9 * self.settings.lease_s

    # Manager

    async def _manage(self) -> None:
        await self._stop_at_deadlines()
        paused = [rs for rs, written in self._tripped.items() if written]
        now, expires = self._expiry()
        survey = await self._db(
            self._cold,
            claims.survey,
            now=now,
            live_since=now - timedelta(seconds=self.settings.lease_s),
        )
        open_plans = {plan.run_service_id: plan for plan in survey.lanes}
        for rs in paused:
            self._tripped.pop(rs, None)
        for lane in list(self.lanes.values()):
            if lane.id not in open_plans:
                self._stop_lane(lane, release=True)
        for plan in survey.lanes:
            if plan.run_service_id in self._tripped:
                continue
            known = self.lanes.get(plan.run_service_id)
            if known is None:
                self.lanes[plan.run_service_id] = Lane(
                    plan, breaker_failures=self.settings.breaker_failures
                )
            else:
                known.plan = plan  # endpoints edited during the run apply at once
        tick = time.monotonic()
        if tick - self._lag_taken >= LAG_WINDOW_S:
            await self._follow_lag()
        for lane in self.lanes.values():
            lane.tick(tick - self._last_tick)
        self._last_tick = tick

        self._settle_streaks()
        await self._finish_idle_lanes()
        await self._balance_slots(survey.live_workers)
        self._reap_drained_lanes()
        if not self._closing:
            await self._prober.watch(survey.down)
        for lane in self.lanes.values():
            lane.dry = False
        self._claim_now.set()

    async def _follow_lag(self) -> None:
        """Once a second, and when a lane ends: fit the requests in flight to how late the
        loop ran, and record that lateness on the runs sent to meanwhile (SPEC §8)."""
        window = self._lag.take()
        self._lag_taken = time.monotonic()
        await self._global.adjust(window)
        sent, self._sent_runs = self._sent_runs, set()
        if window is not None and sent:
            await self._db(
                self._cold, timing.record_uncertainty, run_ids=sent, lag_ms=window.p99_ms
            )

    async def _stop_at_deadlines(self) -> None:
        """Lanes of runs past their deadline stop at once, their requests in flight
        abandoned; what was answered is written before the runs close, so it counts."""
        now = utcnow()
        due = [x for x in self.lanes.values() if x.plan.deadline and x.plan.deadline <= now]
        for lane in due:
            self._results.extend(lane.streak.take())  # answered (silently) in time
            self._stop_lane(lane, release=False)  # its unsent items are recorded missed
            for task in list(lane.consumers.values()):
                task.cancel()
        if self._results:
            # Answers in hand count, those of lanes paused or draining too (the failures
            # that tripped a breaker wait here): written before a due run is closed.
            await self._flush()
        for run_id in await self._db(self._cold, deadline.close_due_runs, now=now):
            log.info("run %d stopped at its deadline", run_id)

    async def _finish_idle_lanes(self) -> None:
        for lane in [x for x in self.lanes.values() if x.dry and x.idle and not x.stopping]:
            if not (lane.idle and lane.dry and not lane.stopping):
                continue
            if lane.plan.run_id in self._sent_runs:
                await self._follow_lag()  # a short run gets its figure too
            # This worker holds nothing of the lane (and claims nothing for it while it is
            # dry), so an item still leased to it is one whose claim committed while the
            # answer was lost with the connection: the heartbeat would keep it leased for
            # ever and the run would never end. It goes back to pending.
            lost = await self._db(
                self._cold, claims.release_lane_items, worker_id=self.id, run_service_id=lane.id
            )
            if lost:
                log.warning("worker %s: %d items of a lost claim are pending again", self.id, lost)
            final = await self._db(
                self._cold,
                finish.finish_service,
                run_service_id=lane.id,
                phase=lane.plan.phase,
                scorer=lane.scorer,
                elapsed=lane.elapsed_s(),
            )
            if not final:
                continue
            self._stop_lane(lane, release=True)
            now, _ = self._expiry()
            if await self._db(self._cold, finish.complete_run, run_id=lane.plan.run_id, now=now):
                log.info("run %d completed", lane.plan.run_id)

    async def _balance_slots(self, live_workers: int) -> None:
        wants: dict[int, int] = {}
        for lane in self.lanes.values():
            # A worker sends to a dial-out service only through its own connections
            # (SPEC §10): with none, and no endpoint, it leaves the slots to the others.
            # Alone, it sends anyway, so that the breaker pauses the service and in the
            # end gives up on it rather than the run waiting for ever.
            servable = live_workers == 1 or bool(self.dispatcher.instances(lane.target))
            share = math.ceil(lane.plan.max_concurrency / live_workers) if servable else 0
            if lane.held < share:
                wants[lane.id] = share - lane.held
            elif lane.held > share:
                for _ in range(lane.held - share):
                    lane.retiring += 1
                    lane.queue.put_nowait(None)
        released, self._slots_to_release = self._slots_to_release, []
        if released:
            try:
                await self._db(
                    self._hot, claims.release_slots, worker_id=self.id, slot_ids=released
                )
            except BaseException:
                self._slots_to_release.extend(released)  # the heartbeat would keep them
                raise
        if not wants:
            return
        now, expires = self._expiry()
        held = {slot for lane in [*self.lanes.values(), *self._draining] for slot in lane.consumers}
        leased = await self._db(
            self._hot,
            claims.lease_slots,
            worker_id=self.id,
            wants=wants,
            now=now,
            expires=expires,
            held=held | set(self._slots_to_release),
        )
        for run_service_id, slot_ids in leased.items():
            taker = self.lanes.get(run_service_id)
            if taker is None or taker.stopping:
                self._slots_to_release.extend(slot_ids)
                continue
            for slot_id in slot_ids:
                taker.consumers[slot_id] = asyncio.create_task(
                    self._consume(taker, slot_id), name=f"recoghub-lane-{taker.id}-slot-{slot_id}"
                )

    def _stop_lane(self, lane: Lane, *, release: bool) -> None:
        """Stop sending for a lane: unsent items go back (now, or at shutdown), its
        consumers leave after their request in flight."""
        if lane.stopping:
            return
        lane.stopping = True
        self.lanes.pop(lane.id, None)
        self._draining.append(lane)
        unsent: list[int] = []
        while not lane.queue.empty():
            claim = lane.queue.get_nowait()
            if claim is not None:
                unsent.append(claim.item_id)
                self._images.release(claim.image_id)
        lane.buffered = 0
        lane.retiring = 0
        unsent.extend(self._take_held(lane))
        for _ in lane.consumers:
            lane.queue.put_nowait(None)
        if unsent and release and not self._closing:
            self._release_later(unsent)

    def _release_later(self, item_ids: list[int]) -> None:
        task = asyncio.create_task(self._release_items(item_ids))
        task.add_done_callback(_log_failure)

    async def _release_items(self, item_ids: list[int]) -> None:
        await self._db(self._hot, claims.release_items, worker_id=self.id, item_ids=item_ids)

    def _reap_drained_lanes(self) -> None:
        self._draining = [lane for lane in self._draining if lane.consumers or not lane.idle]

    # The dead-service breaker (gateway.runs.breaker)

    def _take_held(self, lane: Lane) -> list[int]:
        """The items of the results a lane's streak holds back, to be given back unsent."""
        held = lane.streak.take()
        lane.unflushed -= len(held)
        return [row["id"] for _, row, _ in held]

    def _trip(self, lane: Lane) -> None:
        """Pause a lane whose service stopped answering; its held items go back, unless
        the lane never reached the service (then those failures are recorded)."""
        if not lane.streak.reached:
            self._results.extend(lane.streak.take())
        self._tripped[lane.id] = False
        self._stop_lane(lane, release=True)
        asyncio.create_task(self._mark_down(lane))

    async def _mark_down(self, lane: Lane) -> None:
        reason = lane.streak.reason()
        try:
            await self._db(self._hot, breaker.mark_down, run_service_id=lane.id, reason=reason)
        except Exception:
            self._tripped.pop(lane.id, None)  # not paused: the lane opens again
            log.exception("worker %s: pausing run service %d failed", self.id, lane.id)
            return
        self._tripped[lane.id] = True
        log.warning("run %d, service %s: %s", lane.plan.run_id, lane.target.service_guid, reason)

    def _settle_streaks(self) -> None:
        """A lane with nothing left to send: the failures its streak holds are final."""
        for lane in self.lanes.values():
            if lane.dry and lane.buffered == 0 and lane.in_flight == 0 and lane.streak.held:
                self._results.extend(lane.streak.take())

    # Claimer

    async def _claim_loop(self) -> None:
        while True:
            await wait_event(self._claim_now, self.poll_s)
            self._claim_now.clear()
            try:
                await self._claim()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker %s: claiming failed; retrying", self.id)
                await asyncio.sleep(self.poll_s)

    async def _claim(self) -> None:
        wants = {lane.id: n for lane in self.lanes.values() if (n := lane.wants()) > 0}
        if not wants or self._closing:
            return
        now, expires = self._expiry()
        claimed, refs = await self._db(
            self._hot,
            claims.claim_items,
            worker_id=self.id,
            wants=wants,
            mark_ongoing=[rs for rs in wants if not self.lanes[rs].ongoing],
            now=now,
            expires=expires,
            known_images=self._images.known(),
        )
        # Hold the images already cached before anything else can evict them.
        held: set[int] = set()
        for items in claimed.values():
            for item in items:
                if self._images.hold(item.image_id, None):
                    held.add(item.item_id)
        to_load = sorted(
            {i.image_id for items in claimed.values() for i in items if i.item_id not in held}
        )
        evicted = [image_id for image_id in to_load if image_id not in refs]
        if evicted:  # cached when the claim started, gone since
            refs.update(await self._db(self._hot, claims.image_refs, image_ids=evicted))
        pictures: dict[int, Picture] = {}
        missing: dict[int, str] = {}
        if to_load:
            pictures, missing = await asyncio.get_running_loop().run_in_executor(
                self._hot, load_pictures, self.settings.data_dir, [refs[i] for i in to_load]
            )
        claimed_at = time.monotonic()
        unusable: list[int] = []
        for n, (run_service_id, wanted) in enumerate(wants.items(), start=1):
            if n % 2 == 0:
                await asyncio.sleep(0)  # a claim can be hundreds of items per lane
            items = claimed.get(run_service_id, [])
            lane = self.lanes.get(run_service_id)
            usable: list[ClaimedItem] = []
            for item in items:
                if item.item_id in held or self._images.hold(
                    item.image_id, pictures.get(item.image_id)
                ):
                    usable.append(item)
                else:
                    unusable.append(item.item_id)
            if lane is None or lane.stopping:
                unusable.extend(item.item_id for item in usable)
                for item in usable:
                    self._images.release(item.image_id)
                continue
            if len(items) < wanted:
                lane.dry = True
            if items:
                lane.ongoing = True
            for item in usable:
                lane.buffered += 1
                lane.queue.put_nowait(Claim(item.item_id, item.image_id, claimed_at))
        if unusable:
            await self._release_items(unusable)
        if missing:
            await self._fail_runs_missing_images(claimed, missing)

    async def _fail_runs_missing_images(
        self, claimed: dict[int, list[ClaimedItem]], missing: dict[int, str]
    ) -> None:
        """The hub cannot go on with a run whose image files are gone: fail it, with the
        reason, until the organizer restores the files and resumes it."""
        failing: dict[int, str] = {}
        for run_service_id, items in claimed.items():
            plan_lane = self.lanes.get(run_service_id)
            lost = [missing[i.image_id] for i in items if i.image_id in missing]
            if plan_lane is not None and lost:
                failing[plan_lane.plan.run_id] = f"cannot read an image of the dataset: {lost[0]}"
        now, _ = self._expiry()
        for run_id, error in sorted(failing.items()):
            log.error("run %d failed: %s", run_id, error)
            await self._db(self._cold, claims.fail_run, run_id=run_id, error=error, now=now)
        for lane in list(self.lanes.values()):
            if lane.plan.run_id in failing:
                self._stop_lane(lane, release=True)

    # Consumers: one per leased slot, one request at a time

    async def _consume(self, lane: Lane, slot_id: int) -> None:
        try:
            while True:
                if lane.queue.empty() and not (lane.dry or lane.stopping):
                    lane.starved = True
                claim = await lane.queue.get()
                if claim is None:
                    if lane.retiring > 0:
                        lane.retiring -= 1
                    return
                lane.buffered -= 1
                if lane.buffered <= lane.buffer_target() // 2:
                    self._claim_now.set()
                # In flight from here until its result is queued for writing (or it is
                # given back): the lane is not idle meanwhile.
                lane.in_flight += 1
                try:
                    await self._send(lane, claim)
                except Exception:
                    # A bug of the hub, not an outcome of the team: give the item back
                    # so that it is sent again, and keep the lane going.
                    log.exception("worker %s: sending item %d failed", self.id, claim.item_id)
                    await self._release_items([claim.item_id])
                    await asyncio.sleep(self.poll_s)
                finally:
                    lane.in_flight -= 1
        finally:
            lane.consumers.pop(slot_id, None)
            self._slots_to_release.append(slot_id)

    async def _send(self, lane: Lane, claim: Claim) -> None:
        picture = self._images.get(claim.image_id)
        if picture is None:
            raise RuntimeError(f"image {claim.image_id} was not held for its claim")
        try:
            while time.monotonic() > self._lease_deadline and not lane.stopping:
                # Our leases may lapse: sending now could break the service's bound.
                await asyncio.sleep(self.poll_s)
            if lane.stopping and self._closing:
                return
            async with self._global:
                if lane.first_sent is None:
                    lane.first_sent = utcnow()
                queue_ms = (time.monotonic() - claim.claimed_at) * 1000.0
                self._sent_runs.add(lane.plan.run_id)
                answer = await self.dispatcher.recognize(
                    lane.target,
                    picture.data,
                    content_type=picture.content_type,
                    digest=picture.digest,
                    timeout_s=lane.plan.timeout_s,
                    max_attempts=lane.plan.max_attempts,
                    request_id=f"{self._request_ids.getrandbits(128):032x}",
                    # A paused service (breaker) gets no more retries of what was in flight.
                    given_up=lambda: lane.stopping,
                )
        finally:
            self._images.release(claim.image_id)
        lane.completed += 1
        lane.unflushed += 1
        row = result_row(claim.item_id, answer, queue_ms)
        self._results.extend(
            lane.streak.add(row["outcome"], answer.detail, (lane, row, picture.truth))
        )
        if lane.streak.tripped and not lane.stopping:
            self._trip(lane)
        elif lane.stopping and lane.streak.held and not self._closing:
            self._release_later(self._take_held(lane))
        if len(self._results) >= self.settings.result_batch_size:
            self._flush_now.set()

    # Writer

    async def _write_loop(self) -> None:
        while True:
            await wait_event(self._flush_now, self.settings.result_flush_s)
            self._flush_now.clear()
            try:
                await self._flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker %s: writing results failed; retrying", self.id)
                await asyncio.sleep(self.poll_s)

    async def _flush(self) -> None:
        if not self._results:
            return
        batch, self._results = self._results, []
        # Recorded and counted in the live scores in one transaction (exactly once).
        scored = [live_scores.ScoredResult(lane.id, row, truth) for lane, row, truth in batch]
        try:
            try:
                written = await self._db(
                    self._hot, live_scores.record_scored, worker_id=self.id, batch=scored
                )
            except live_scores.LeaseLost:
                written = await self._db(
                    self._hot, live_scores.record_scored_checked, worker_id=self.id, batch=scored
                )
        except BaseException:
            self._results[:0] = batch  # keep them for the next try
            raise
        self.recorded += written
        complete = written == len(batch)
        for n, (lane, row, truth) in enumerate(batch, start=1):
            lane.unflushed -= 1
            if complete:
                lane.score(row, truth)
            else:  # some leases were lost: only the database knows what counts
                lane.scorer = None
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let answers that arrived meanwhile be timed


# `Outcome.X.value` goes through enum's descriptor machinery: slow enough to matter at
# thousands of results a second.
_OUTCOME_TEXT = {outcome: outcome.value for outcome in Outcome}


def result_row(item_id: int, answer: Answer, queue_ms: float) -> dict[str, Any]:
    """A work item's result columns from the dispatcher's answer; `attempt_log` has the
    shape of `Attempt.as_dict()`."""
    raw = answer.raw[:RAW_CHARS] if answer.raw is not None else None
    return {
        "id": item_id,
        "outcome": _OUTCOME_TEXT[answer.outcome],
        "attempts": len(answer.attempts),
        "latency_ms": answer.latency_ms,
        "queue_ms": queue_ms,
        "http_status": answer.status,
        "request_id": answer.request_id,
        "raw": raw,
        "tags": [[tag.tag, tag.score] for tag in answer.tags],
        "detail": answer.detail,
        "attempt_log": [
            {
                "n": a.number,
                "instance": a.instance,
                "outcome": _OUTCOME_TEXT[a.outcome],
                "latency_ms": a.latency_ms,
                "status": a.status,
                "detail": a.detail,
            }
            for a in answer.attempts
        ],
        "finished_at": utcnow(),
    }


def _log_failure(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("releasing work items failed: %s", task.exception())


__all__ = ["DispatchWorker", "new_worker_id", "result_row"]

"""The worker's sending: its share of each lane's service slots, and one consumer task per
slot it leases, which sends one request at a time. So a service never has more requests
in flight than the slots leased for it across all workers (at most its concurrency), and
a slow or dead service only occupies its own consumers: no lane waits on another.
"""

import asyncio
import logging
import math
import random
import secrets
import time

from gateway.db import utcnow
from gateway.dispatch.dispatcher import Dispatcher
from gateway.runs import lifecycle
from gateway.runs.engine import store
from gateway.runs.engine.claimer import Claimer
from gateway.runs.engine.heartbeat import Heartbeat
from gateway.runs.engine.images import ImageCache
from gateway.runs.engine.lanes import Claim, Lane, Lanes
from gateway.runs.engine.threads import Database
from gateway.runs.engine.timing import LagFollower
from gateway.runs.engine.writer import ResultWriter
from gateway.runs.records import OUTCOME, result_row

log = logging.getLogger("recoghub.worker")


class Sender:
    def __init__(
        self,
        *,
        db: Database,
        worker_id: str,
        dispatcher: Dispatcher,
        lease_s: float,
        poll_s: float,
        lanes: Lanes,
        images: ImageCache,
        claimer: Claimer,
        writer: ResultWriter,
        heartbeat: Heartbeat,
        timing: LagFollower,
        dialout_grace_s: float = 0.0,
    ) -> None:
        self._db = db
        self._worker_id = worker_id
        self._dispatcher = dispatcher
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._lanes = lanes
        self._images = images
        self._claimer = claimer
        self._writer = writer
        self._heartbeat = heartbeat
        self._timing = timing
        # Until then a dial-out service waits for its recognizers to connect (monotonic).
        self._grace_until = time.monotonic() + dialout_grace_s
        # Slots this worker leased and holds no consumer for, freed at the next balance
        # (until then the heartbeat keeps them).
        self._slots_to_release: list[int] = []
        # Request ids from a PRNG seeded once from the OS: os.urandom per request is a
        # syscall that gives up the GIL, and waits to get it back while a database
        # thread runs. Ids only need to be unique and unguessable from the data; 32 hex
        # digits, as `new_request_id`.
        self._request_ids = random.Random(secrets.randbits(128))

    def in_dialout_grace(self) -> bool:
        """This process started recently: a dial-out service without a connection is
        waited for, not sent to (its recognizers reconnect after the hub's restart)."""
        return time.monotonic() < self._grace_until

    def release_slot_later(self, slot_id: int) -> None:
        self._slots_to_release.append(slot_id)

    async def balance_slots(self, live_workers: int) -> None:
        """Take this worker's fair share of each lane's slots (ceil(k / live workers)),
        starting a consumer for each slot leased, and retire consumers above it."""
        wants: dict[int, int] = {}
        for lane in self._lanes.open.values():
            # A worker sends to a dial-out service only through its own connections
            # (SPEC §10): with none, and no endpoint, it leaves the slots to the others.
            # Alone, it sends anyway once its grace is over, so that the breaker pauses
            # the service and in the end gives up on it rather than the run waiting for
            # ever; during the grace the recognizers reconnect after the hub's restart.
            reachable = bool(self._dispatcher.instances(lane.target))
            servable = reachable or (live_workers == 1 and not self.in_dialout_grace())
            share = math.ceil(lane.plan.max_concurrency / live_workers) if servable else 0
            if lane.held < share:
                wants[lane.id] = share - lane.held
            elif lane.held > share:
                for _ in range(lane.held - share):
                    lane.retire_consumer()
        released, self._slots_to_release = self._slots_to_release, []
        if released:
            try:
                await self._db.hot(
                    lifecycle.slots.release, worker_id=self._worker_id, slot_ids=released
                )
            except BaseException:
                self._slots_to_release.extend(released)  # the heartbeat would keep them
                raise
        if not wants:
            return
        now, expires = store.lease_window(self._lease_s)
        lanes = [*self._lanes.open.values(), *self._lanes.draining]
        held = {slot for lane in lanes for slot in lane.consumers}
        leased = await self._db.hot(
            lifecycle.slots.lease,
            worker_id=self._worker_id,
            wants=wants,
            now=now,
            expires=expires,
            held=held | set(self._slots_to_release),
        )
        for run_service_id, slot_ids in leased.items():
            taker = self._lanes.open.get(run_service_id)
            if taker is None or taker.stopping:
                self._slots_to_release.extend(slot_ids)
                continue
            for slot_id in slot_ids:
                taker.consumers[slot_id] = asyncio.create_task(
                    self._consume(taker, slot_id), name=f"recoghub-lane-{taker.id}-slot-{slot_id}"
                )

    async def _consume(self, lane: Lane, slot_id: int) -> None:
        queue = lane.queue
        try:
            while True:
                # A claim in the buffer is taken without a coroutine (most are).
                if queue.empty():
                    if not (lane.dry or lane.stopping):
                        lane.note_starved()
                    claim = await queue.get()
                else:
                    claim = queue.get_nowait()
                if claim is None:
                    lane.consumer_retired()
                    return
                if lane.dequeued():
                    self._claimer.wake()
                # In flight from here until its result is queued for writing (or it is
                # given back): the lane is not idle meanwhile.
                lane.sending()
                try:
                    await self._send(lane, claim)
                except Exception:
                    # A bug of the hub, not an outcome of the team: give the item back
                    # so that it is sent again, and keep the lane going.
                    log.exception(
                        "worker %s: sending item %d failed", self._worker_id, claim.item_id
                    )
                    await self._lanes.give_back([claim.item_id])
                    await asyncio.sleep(self._poll_s)
                finally:
                    lane.sent()
                if lane.done_sending:
                    self._writer.flush_soon()  # its last results: written now, not later
        finally:
            lane.consumers.pop(slot_id, None)
            self._slots_to_release.append(slot_id)

    async def _send(self, lane: Lane, claim: Claim) -> None:
        image_id = claim.image_id
        picture = self._images.get(image_id)
        if picture is None:
            raise RuntimeError(f"image {image_id} was not held for its claim")
        lanes = self._lanes
        limit = self._timing.in_flight
        try:
            while not self._heartbeat.leases_safe and not lane.stopping:
                # Our leases may lapse: sending now could break the service's bound.
                await asyncio.sleep(self._poll_s)
            if lane.stopping and lanes.closing:
                return
            if not limit.enter_now():
                await limit.enter()
            try:
                if lane.first_sent is None:
                    lane.first_sent = utcnow()
                queue_ms = (time.monotonic() - claim.claimed_at) * 1000.0
                plan = lane.plan
                self._timing.sent_runs.add(plan.run_id)
                answer = await self._dispatcher.recognize(
                    plan.target,
                    picture.data,
                    content_type=picture.content_type,
                    digest=picture.digest,
                    timeout_s=plan.timeout_s,
                    max_attempts=plan.max_attempts,
                    request_id=self._request_ids.getrandbits(128).to_bytes(16).hex(),
                    # A paused service (breaker) gets no more retries of what was in flight.
                    given_up=lane.is_stopping,
                )
            finally:
                limit.leave()
        finally:
            self._images.release(image_id)
        if lanes.closing and not answer.ok:
            # The hub is stopping: its shutdown cut this request's retries short (or its
            # connection). The hub's own fault: the item is sent again after the restart,
            # left leased here and released when the worker unregisters.
            log.info(
                "worker %s: item %d failed while stopping (%s); it is sent again",
                self._worker_id,
                claim.item_id,
                answer.outcome.value,
            )
            return
        lane.answered()
        # The row the recording process receives, built without a record (engine.recording).
        row = result_row(
            answer,
            item_id=claim.item_id,
            run_service_id=lane.id,
            queue_ms=queue_ms,
            truth=picture.truth,
            part=split.part_of(image_id) if (split := lane.plan.split) else None,
            finished_us=time.time_ns() // 1000,
        )
        self._writer.add(lane.streak.add(row[OUTCOME], answer.detail, (lane, row)))
        if lane.streak.tripped and not lane.stopping:
            self._writer.add(lanes.trip(lane))
        elif lane.stopping and lane.streak.held and not lanes.closing:
            lanes.give_back_later(lanes.take_held(lane))

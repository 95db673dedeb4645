"""`DispatchWorker`: one per process; it builds the engine's parts, starts their loops
and watches them, and stops them cleanly (see the package's docstring for how the parts
work together).
"""

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import Engine

from gateway.challenges.closing import CLOSER_EVERY_S, close_due_phases
from gateway.config import Settings
from gateway.db import utcnow
from gateway.dispatch.dispatcher import Dispatcher
from gateway.runs.engine import store
from gateway.runs.engine.claimer import Claimer
from gateway.runs.engine.heartbeat import Heartbeat
from gateway.runs.engine.images import ImageCache
from gateway.runs.engine.lanes import Lanes
from gateway.runs.engine.prober import Prober
from gateway.runs.engine.sender import Sender
from gateway.runs.engine.surveyor import Surveyor
from gateway.runs.engine.threads import Database, DatabaseLost, DbThreads
from gateway.runs.engine.timing import InFlightLimit, LagFollower, wait_event
from gateway.runs.engine.writer import ResultWriter

log = logging.getLogger("recoghub.worker")

POLL_S = 0.25
# How long a stopping worker lets requests in flight finish before giving them back.
SHUTDOWN_GRACE_S = 3.0


def new_worker_id() -> str:
    """host-pid-random, unique per worker process."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class DispatchWorker:
    """Sends the work items of every active run until `run(stop)` sees `stop` set, or
    its `db` is lost (the recording process died: `run` raises why, after stopping)."""

    def __init__(
        self,
        *,
        engine: Engine | None = None,
        db: Database | None = None,
        dispatcher: Dispatcher,
        settings: Settings,
        exclusive: bool = False,
        worker_id: str | None = None,
        poll_s: float = POLL_S,
        public_url: str | None = None,
        dialout_grace: bool = True,
    ) -> None:
        self.engine = engine
        self.dispatcher = dispatcher
        self.settings = settings
        # The only worker of its database (SQLite, lock held): may free others' leases.
        self.exclusive = exclusive
        self.id = wid = worker_id or new_worker_id()
        # Where dial-out recognizers reach this process (SPEC §10), told to them all.
        self.public_url = public_url
        self.poll_s = poll_s
        lease_s = settings.lease_s
        # Where its statements run: threads of this process by default, a recording
        # process in production (engine.process, engine.recorder).
        if db is None:
            if engine is None:
                raise ValueError("a DispatchWorker needs an engine or a db")
            db = DbThreads(engine)
        self.db = db
        images = ImageCache()
        self.lanes = lanes = Lanes(db=db, worker_id=wid, images=images)
        # Requests in flight, fewer while the event loop runs late (engine.timing).
        limit = InFlightLimit(
            maximum=settings.global_concurrency, bound_ms=settings.timing_bound_ms
        )
        self.timing = timing = LagFollower(db=db, in_flight=limit)
        # Set once a lane that has sent its last item has its results written (the
        # writer's `flush_soon`, asked by the consumer that sent it or by the claim that
        # found the lane dry): the survey closes it, and completes its run, now rather
        # than at its next tick.
        self.survey_soon = asyncio.Event()
        self.writer = writer = ResultWriter(
            db=db,
            worker_id=wid,
            batch_size=settings.result_batch_size,
            flush_s=settings.result_flush_s,
            poll_s=poll_s,
            on_drained=self.survey_soon.set,
        )
        self.heartbeat = heartbeat = Heartbeat(db=db, worker_id=wid, lease_s=lease_s, lanes=lanes)
        self.claimer = claimer = Claimer(
            db=db,
            worker_id=wid,
            lease_s=lease_s,
            data_dir=settings.data_dir,
            poll_s=poll_s,
            lanes=lanes,
            images=images,
            on_done_sending=writer.flush_soon,
        )
        self.sender = sender = Sender(
            db=db,
            worker_id=wid,
            dispatcher=dispatcher,
            lease_s=lease_s,
            poll_s=poll_s,
            lanes=lanes,
            images=images,
            claimer=claimer,
            writer=writer,
            heartbeat=heartbeat,
            timing=timing,
            # A process that accepts no dial-out connection has no recognizer to wait for.
            dialout_grace_s=settings.dialout_grace_s if dialout_grace else 0.0,
        )
        self.prober = Prober(
            worker_id=wid,
            settings=settings,
            dispatcher=dispatcher,
            db=db,
            release_slot=sender.release_slot_later,
        )
        self.surveyor = Surveyor(
            db=db,
            worker_id=wid,
            lease_s=lease_s,
            breaker_failures=settings.breaker_failures,
            lanes=lanes,
            claimer=claimer,
            sender=sender,
            writer=writer,
            timing=timing,
            prober=self.prober,
        )

    @property
    def recorded(self) -> int:
        """Results this worker has written."""
        return self.writer.recorded

    async def run(self, stop: asyncio.Event) -> None:
        """Register, dispatch until `stop` is set, then stop cleanly: requests in flight
        finish (briefly), results are written, unsent items and slots are released."""
        try:
            await self._register()
        except BaseException:
            self.db.abandon()
            raise
        self.heartbeat.leases_taken()
        log.info("worker %s started", self.id)
        loops = [
            asyncio.create_task(
                self._every(self.surveyor.tick, self.poll_s, soon=self.survey_soon),
                name="recoghub-manage",
            ),
            asyncio.create_task(self.claimer.run(), name="recoghub-claim"),
            asyncio.create_task(self.timing.lag.run(), name="recoghub-loop-lag"),
            asyncio.create_task(self.writer.run(), name="recoghub-write"),
            asyncio.create_task(
                self._every(self.heartbeat.beat, self.settings.heartbeat_s),
                name="recoghub-heartbeat",
            ),
            # A challenge phase closes at its close even when nobody reads it.
            asyncio.create_task(
                self._every(self.close_phases, CLOSER_EVERY_S), name="recoghub-close-phases"
            ),
        ]
        stopped = asyncio.create_task(stop.wait())
        lost = asyncio.create_task(self.db.lost())
        try:
            await asyncio.wait([stopped, lost], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            lost.cancel()
            await self._shutdown(loops)
        if lost.done() and not lost.cancelled():
            raise lost.result()

    async def _register(self) -> None:
        now, _ = store.lease_window(self.settings.lease_s)
        if self.exclusive:
            freed = await self.db.hot(store.take_over, worker_id=self.id)
            if freed:
                log.info("resuming: %d work items left leased by a stopped hub are free", freed)
        await self.db.hot(
            store.register_worker,
            worker_id=self.id,
            host=socket.gethostname()[:200],
            pid=os.getpid(),
            now=now,
            forget_before=now - timedelta(seconds=max(3600.0, 10 * self.settings.lease_s)),
            public_url=self.public_url,
        )

    async def _shutdown(self, loops: list[asyncio.Task[None]]) -> None:
        lanes = self.lanes
        lanes.closing = True
        for lane in list(lanes.open.values()):
            lanes.stop(lane, release=False)
        consumers = [t for lane in lanes.draining for t in lane.consumers.values()]
        if consumers:
            _, pending = await asyncio.wait(consumers, timeout=SHUTDOWN_GRACE_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        loops.extend(self.prober.stop())
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        try:
            while self.writer.pending:
                await self.writer.flush()
            await self.db.hot(
                store.unregister_worker, worker_id=self.id, run_service_ids=lanes.ids()
            )
        except DatabaseLost as lost:
            log.warning("worker %s: %s; its leases expire by themselves", self.id, lost)
        except Exception:
            log.exception(
                "worker %s could not release its leases; they expire by themselves", self.id
            )
        finally:
            await self.db.close()
        log.info("worker %s stopped after recording %d results", self.id, self.recorded)

    async def close_phases(self) -> None:
        """Close the challenge phases that are due (gateway.challenges.closing)."""
        await self.db.cold(close_due_phases, now=utcnow())

    async def _every(
        self,
        step: Callable[[], Awaitable[None]],
        every_s: float,
        *,
        soon: asyncio.Event | None = None,
    ) -> None:
        """Run `step` every `every_s` (or as soon as `soon` is set) until cancelled; a
        failed step is logged and retried."""
        while True:
            if soon is not None:
                soon.clear()  # set during the step: the next one runs at once
            try:
                await step()
            except (asyncio.CancelledError, DatabaseLost):
                raise  # the worker stops (`run`)
            except Exception:
                log.exception("worker %s: %s failed; retrying", self.id, step.__name__)
            if soon is None:
                await asyncio.sleep(every_s)
            else:
                await wait_event(soon, every_s)


__all__ = ["DispatchWorker", "new_worker_id"]

"""One worker's probing of the run services the breaker paused (`engine.breaker`).

Each survey hands the `down` run services to `Prober.watch`: the worker takes the probe
lease of those nobody probes, pings their `/ping` on the breaker's back-off, and then
either reopens the service (every worker's next survey sends it again) or, past the
give-up time, records its remaining items `unreachable` and closes it.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from gateway.config import Settings
from gateway.db import utcnow
from gateway.dispatch.dispatcher import Dispatcher
from gateway.runs import lifecycle
from gateway.runs.engine import breaker
from gateway.runs.engine.store import LanePlan
from gateway.runs.engine.threads import Database

log = logging.getLogger("recoghub.worker")


class Prober:
    """Probes the down run services whose probe lease this worker holds."""

    def __init__(
        self,
        *,
        worker_id: str,
        settings: Settings,
        dispatcher: Dispatcher,
        db: Database,
        release_slot: Callable[[int], None],
    ) -> None:
        self.worker_id = worker_id
        self.settings = settings
        self.dispatcher = dispatcher
        self._db = db
        # A probe lease this worker no longer needs, to be freed with its other slots.
        self._release_slot = release_slot
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._down: dict[int, LanePlan] = {}

    async def watch(self, down: list[LanePlan]) -> None:
        """Start probing each down service whose probe lease this worker gets; stop
        probing the ones no longer down (resumed, given up, or their run stopped)."""
        self._down = {plan.run_service_id: plan for plan in down}
        for run_service_id, task in list(self._tasks.items()):
            if run_service_id not in self._down:
                task.cancel()
        wanted = [rs for rs in self._down if rs not in self._tasks]
        if not wanted:
            return
        now = utcnow()
        leased = await self._db.cold(
            lifecycle.slots.lease_probes,
            worker_id=self.worker_id,
            run_service_ids=wanted,
            now=now,
            expires=now + timedelta(seconds=self.settings.lease_s),
        )
        for run_service_id, slot_id in leased.items():
            self._tasks[run_service_id] = asyncio.create_task(
                self._probe(self._down[run_service_id], slot_id),
                name=f"recoghub-probe-{run_service_id}",
            )

    def stop(self) -> list[asyncio.Task[None]]:
        """Cancel every probe; returns the tasks to wait for."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        return tasks

    async def _probe(self, plan: LanePlan, slot_id: int) -> None:
        rs, settings = plan.run_service_id, self.settings
        schedule = breaker.ProbeSchedule(
            first_s=settings.breaker_probe_s,
            max_s=settings.breaker_probe_max_s,
            give_up_s=settings.breaker_give_up_s,
        )
        lease = {"run_service_id": rs, "worker_id": self.worker_id, "slot_id": slot_id}
        service = f"run {plan.run_id}, service {plan.target.service_guid}"
        try:
            # The latest plan: a team may fix its endpoints while its service is down.
            error = await breaker.probe(lambda: self._ping(self._down.get(rs, plan)), schedule)
            if error is None:
                await self._db.cold(breaker.resume, **lease)
                log.info("%s answers /ping again: resumed", service)
                return
            now = utcnow()
            given_up = await self._db.cold(
                breaker.give_up,
                **lease,
                give_up_s=schedule.give_up_s,
                last_error=error,
                now=now,
            )
            log.warning("%s: down too long, %d images recorded unreachable", service, given_up)
            if await self._db.cold(lifecycle.complete_run, run_id=plan.run_id, now=now):
                log.info("run %d completed", plan.run_id)
        except asyncio.CancelledError:
            self._release_slot(slot_id)
            raise
        except Exception:
            log.exception("worker %s: probing run service %d failed", self.worker_id, rs)
            self._release_slot(slot_id)
        finally:
            self._tasks.pop(rs, None)

    async def _ping(self, plan: LanePlan) -> str | None:
        """None if an instance of the service (an endpoint or a recognizer connected out
        to this process) answers its ping with 200, else why none did."""
        pings = await asyncio.gather(
            *(
                self.dispatcher.ping(url, timeout_s=plan.timeout_s)
                for url in self.dispatcher.instances(plan.target)
            )
        )
        if any(ping.reachable for ping in pings):
            return None
        return (
            "; ".join(f"{p.instance}/ping: {p.detail}" for p in pings)
            or "no endpoint and no recognizer connected out"
        )

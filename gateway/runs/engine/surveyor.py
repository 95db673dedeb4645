"""The worker's survey tick (every `POLL_S`): it fits the worker's lanes to what the
database says.

- Lanes of runs past their deadline stop at once, their requests in flight abandoned;
  what was answered is written, the rest recorded `missed` (`engine.deadline`).
- Runs due to start are started, and runs with nothing left open completed
  (`survey_runs`); then the survey (`store.survey`) lists the open run services: new
  ones get a lane, lanes no longer open stop, paused ones (the breaker) stay closed.
- Once a second the loop's lateness is followed (`timing.LagFollower`).
- A lane with nothing left to send settles its breaker streak, and once all its items are
  recorded it is scored and closed (and its run completed when it was the last).
- The worker takes its fair share of each lane's slots (`Sender.balance_slots`), and
  probes the down services nobody probes (`engine.prober`).
"""

import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import Connection

from gateway.db import utcnow
from gateway.runs import lifecycle
from gateway.runs.engine import deadline, recording, store
from gateway.runs.engine.claimer import Claimer
from gateway.runs.engine.lanes import Lane, Lanes
from gateway.runs.engine.prober import Prober
from gateway.runs.engine.sender import Sender
from gateway.runs.engine.threads import Database
from gateway.runs.engine.timing import LagFollower
from gateway.runs.engine.writer import ResultWriter

log = logging.getLogger("recoghub.worker")


def survey_runs(conn: Connection, *, now: datetime, live_since: datetime) -> store.Survey:
    """Start the queued runs whose `start_at` has come and complete the running ones with
    nothing left open, then survey the open run services (one transaction)."""
    lifecycle.start_due_runs(conn, now=now)
    lifecycle.complete_emptied_runs(conn, now=now)
    return store.survey(conn, now=now, live_since=live_since)


class Surveyor:
    def __init__(
        self,
        *,
        db: Database,
        worker_id: str,
        lease_s: float,
        breaker_failures: int,
        lanes: Lanes,
        claimer: Claimer,
        sender: Sender,
        writer: ResultWriter,
        timing: LagFollower,
        prober: Prober,
    ) -> None:
        self._db = db
        self._worker_id = worker_id
        self._lease_s = lease_s
        self._breaker_failures = breaker_failures
        self._lanes = lanes
        self._claimer = claimer
        self._sender = sender
        self._writer = writer
        self._timing = timing
        self._prober = prober
        self._last_tick = time.monotonic()

    async def tick(self) -> None:
        lanes = self._lanes
        await self._stop_at_deadlines()
        paused = [rs for rs, written in lanes.tripped.items() if written]
        now, _ = store.lease_window(self._lease_s)
        survey = await self._db.cold(
            survey_runs, now=now, live_since=now - timedelta(seconds=self._lease_s)
        )
        open_plans = {plan.run_service_id: plan for plan in survey.lanes}
        for rs in paused:
            lanes.tripped.pop(rs, None)
        gone = [lane for lane in lanes.open.values() if lane.id not in open_plans]
        if gone:
            # A run closed at its deadline by a tick that did not know it (the deadline
            # moved earlier since this worker's last survey, or another worker closed it):
            # its requests in flight are abandoned too, not left to run on at the team.
            stopped = await self._db.cold(
                store.stopped_at_deadline, run_ids=sorted({lane.plan.run_id for lane in gone})
            )
            for lane in gone:
                if lane.plan.run_id in stopped:
                    self._abandon(lane)
                else:
                    lanes.stop(lane, release=True)
        for plan in survey.lanes:
            if plan.run_service_id in lanes.tripped:
                continue
            known = lanes.open.get(plan.run_service_id)
            if known is None:
                lanes.open[plan.run_service_id] = Lane(
                    plan, breaker_failures=self._breaker_failures
                )
            else:
                known.plan = plan  # endpoints edited during the run apply at once
        tick = time.monotonic()
        if self._timing.due():
            await self._timing.follow()
        for lane in lanes.open.values():
            lane.tick(tick - self._last_tick)
        self._last_tick = tick

        self._settle_streaks()
        await self._finish_idle_lanes()
        await self._sender.balance_slots(survey.live_workers)
        lanes.reap()
        if not lanes.closing:
            await self._prober.watch(survey.down)
        for lane in lanes.open.values():
            lane.refill()
        self._claimer.wake()

    async def _stop_at_deadlines(self) -> None:
        """Lanes of runs past their deadline stop at once, their requests in flight
        abandoned; what was answered is written before the runs close, so it counts."""
        now = utcnow()
        lanes = self._lanes
        due = [x for x in lanes.open.values() if x.plan.deadline and x.plan.deadline <= now]
        for lane in due:
            self._writer.add(lane.streak.take())  # answered (silently) in time
            self._abandon(lane)
        # Answers in hand count, those of lanes paused or draining too (the failures that
        # tripped a breaker wait here), and those of a batch being written: all written
        # before a due run is closed.
        await self._writer.flush()
        for run_id in await self._db.cold(deadline.close_due_runs, now=now):
            log.info("run %d stopped at its deadline", run_id)

    def _abandon(self, lane: Lane) -> None:
        """Stop a lane of a run stopped at its deadline: its unsent items are recorded
        missed, and its requests in flight cancelled, which closes their connections (the
        team's recognizer is free of them before its slots are anyone's again)."""
        self._lanes.stop(lane, release=False)
        for task in list(lane.consumers.values()):
            task.cancel()

    def _settle_streaks(self) -> None:
        """A lane with nothing left to send: the failures its streak holds are final."""
        for lane in self._lanes.open.values():
            if lane.done_sending and lane.streak.held:
                self._writer.add(lane.streak.take())
                self._writer.flush_soon()  # the lane's last results: it closes once written

    async def _finish_idle_lanes(self) -> None:
        lanes = self._lanes
        for lane in [x for x in lanes.open.values() if x.dry and x.idle and not x.stopping]:
            if not (lane.idle and lane.dry and not lane.stopping):
                continue
            if lane.plan.run_id in self._timing.sent_runs:
                await self._timing.follow()  # a short run gets its figure too
            now, _ = store.lease_window(self._lease_s)
            end = await self._db.cold(
                recording.finish_lane,
                worker_id=self._worker_id,
                run_service_id=lane.id,
                run_id=lane.plan.run_id,
                phase=lane.plan.phase,
                serial=lane.serial if lane.scored else None,
                elapsed=lane.elapsed_s(),
                keep=[x.serial for x in lanes.open.values() if x.scored],
                now=now,
            )
            if end.lost:
                log.warning(
                    "worker %s: %d items of a lost claim are pending again",
                    self._worker_id,
                    end.lost,
                )
            if not end.final:
                continue
            lanes.stop(lane, release=True)
            if end.completed:
                log.info("run %d completed", lane.plan.run_id)

"""The worker's claimer: it leases the next items of the lanes whose queue runs low, in
`seq` order, in one transaction for all lanes (buffers grow with a lane's throughput),
holds their images in the cache (reading the files not cached) and queues them on their
lanes. A run whose image files are gone fails, with the reason.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from gateway.runs import lifecycle
from gateway.runs.engine import store
from gateway.runs.engine.images import ImageCache, Picture, load_pictures
from gateway.runs.engine.lanes import Claim, Lanes
from gateway.runs.engine.store import ClaimedItem
from gateway.runs.engine.threads import Database, DatabaseLost
from gateway.runs.engine.timing import wait_event

log = logging.getLogger("recoghub.worker")


class Claimer:
    def __init__(
        self,
        *,
        db: Database,
        worker_id: str,
        lease_s: float,
        data_dir: Path,
        poll_s: float,
        lanes: Lanes,
        images: ImageCache,
        on_done_sending: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._on_done_sending = on_done_sending
        self._worker_id = worker_id
        self._lease_s = lease_s
        self._data_dir = data_dir
        self._poll_s = poll_s
        self._lanes = lanes
        self._images = images
        self._claim_now = asyncio.Event()

    def wake(self) -> None:
        """Claim now rather than at the next poll."""
        self._claim_now.set()

    async def run(self) -> None:
        """Claim when woken, or every `poll_s`, until cancelled."""
        while True:
            await wait_event(self._claim_now, self._poll_s)
            self._claim_now.clear()
            try:
                await self.claim()
            except (asyncio.CancelledError, DatabaseLost):
                raise
            except Exception:
                log.exception("worker %s: claiming failed; retrying", self._worker_id)
                await asyncio.sleep(self._poll_s)

    async def claim(self) -> None:
        """Fill the queues of the lanes that want items."""
        lanes, images = self._lanes, self._images
        wants = {lane.id: n for lane in lanes.open.values() if (n := lane.wants()) > 0}
        if not wants or lanes.closing:
            return
        now, expires = store.lease_window(self._lease_s)
        claimed, refs = await self._db.hot(
            store.claim_items,
            worker_id=self._worker_id,
            wants=wants,
            mark_ongoing=[rs for rs in wants if not lanes.open[rs].ongoing],
            now=now,
            expires=expires,
            known_images=images.known(),
        )
        # Hold the images already cached before anything else can evict them.
        held: set[int] = set()
        for items in claimed.values():
            for item in items:
                if images.hold(item.image_id, None):
                    held.add(item.item_id)
        to_load = sorted(
            {i.image_id for items in claimed.values() for i in items if i.item_id not in held}
        )
        evicted = [image_id for image_id in to_load if image_id not in refs]
        if evicted:  # cached when the claim started, gone since
            refs.update(await self._db.hot(store.image_refs, image_ids=evicted))
        pictures: dict[int, Picture] = {}
        missing: dict[int, str] = {}
        if to_load:
            pictures, missing = await self._db.on_hot_thread(
                load_pictures, self._data_dir, [refs[i] for i in to_load]
            )
        claimed_at = time.monotonic()
        unusable: list[int] = []
        done_sending = False
        for n, (run_service_id, wanted) in enumerate(wants.items(), start=1):
            if n % 2 == 0:
                await asyncio.sleep(0)  # a claim can be hundreds of items per lane
            items = claimed.get(run_service_id, [])
            lane = lanes.open.get(run_service_id)
            usable: list[ClaimedItem] = []
            for item in items:
                if item.item_id in held or images.hold(item.image_id, pictures.get(item.image_id)):
                    usable.append(item)
                else:
                    unusable.append(item.item_id)
            if lane is None or lane.stopping:
                unusable.extend(item.item_id for item in usable)
                for item in usable:
                    images.release(item.image_id)
                continue
            lane.claimed(got=len(items), wanted=wanted)
            for item in usable:
                lane.enqueue(Claim(item.item_id, item.image_id, claimed_at))
            # Ran dry after its consumers sent their last items: no consumer will say so.
            done_sending = done_sending or lane.done_sending
        if done_sending:
            self._on_done_sending()
        if unusable:
            await lanes.give_back(unusable)
        if missing:
            await self._fail_runs_missing_images(claimed, missing)

    async def _fail_runs_missing_images(
        self, claimed: dict[int, list[ClaimedItem]], missing: dict[int, str]
    ) -> None:
        """The hub cannot go on with a run whose image files are gone: fail it, with the
        reason, until the organizer restores the files and resumes it."""
        failing: dict[int, str] = {}
        for run_service_id, items in claimed.items():
            plan_lane = self._lanes.open.get(run_service_id)
            lost = [missing[i.image_id] for i in items if i.image_id in missing]
            if plan_lane is not None and lost:
                failing[plan_lane.plan.run_id] = f"cannot read an image of the dataset: {lost[0]}"
        now, _ = store.lease_window(self._lease_s)
        for run_id, error in sorted(failing.items()):
            log.error("run %d failed: %s", run_id, error)
            await self._db.cold(lifecycle.fail_run, run_id=run_id, error=error, now=now)
        for lane in list(self._lanes.open.values()):
            if lane.plan.run_id in failing:
                self._lanes.stop(lane, release=True)

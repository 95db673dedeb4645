"""The worker's result writer: results are written in batches (`result_batch_size` of
them, or every `result_flush_s`), one executemany per transaction, each row guarded by
this worker's lease and counted in the live scores in the same transaction, so an item
is recorded exactly once (`engine.results`). A crash loses only unwritten results: their
items are still leased, and are sent again once their lease is released.
"""

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from gateway.runs import results
from gateway.runs.engine import recording
from gateway.runs.engine.lanes import Lane, Pending
from gateway.runs.engine.threads import Database, DatabaseLost
from gateway.runs.engine.timing import wait_event

log = logging.getLogger("recoghub.worker")

# Loop-side work on a batch yields to the event loop this often, so that answers
# arriving meanwhile are read (and timed) at once.
YIELD_EVERY = 50


class ResultWriter:
    def __init__(
        self,
        *,
        db: Database,
        worker_id: str,
        batch_size: int,
        flush_s: float,
        poll_s: float,
        on_drained: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._on_drained = on_drained
        self._worker_id = worker_id
        self._batch_size = batch_size
        self._flush_s = flush_s
        self._poll_s = poll_s
        self._flush_now = asyncio.Event()
        self._lane_done = False  # `flush_soon` was called since the last write
        self._writing = asyncio.Lock()  # one batch written at a time, in order
        self.pending: list[Pending] = []  # results to write, with their lanes
        self.recorded = 0

    def add(self, pending: list[Pending]) -> None:
        """Queue results for writing; a full batch is written at once."""
        self.pending.extend(pending)
        if len(self.pending) >= self._batch_size:
            self._flush_now.set()

    def flush_soon(self) -> None:
        """A lane has sent its last item: write what is queued now, then say so
        (`on_drained`: the survey closes the lane), its results queued or written already."""
        self._lane_done = True
        self._flush_now.set()

    async def run(self) -> None:
        """Write a batch whenever one is full, or every `flush_s`, until cancelled."""
        while True:
            await wait_event(self._flush_now, self._flush_s)
            self._flush_now.clear()
            lane_done, self._lane_done = self._lane_done, False
            try:
                await self.flush()
            except (asyncio.CancelledError, DatabaseLost):
                raise
            except Exception:
                self._lane_done |= lane_done  # said after the write that succeeds
                log.exception("worker %s: writing results failed; retrying", self._worker_id)
                await asyncio.sleep(self._poll_s)
            else:
                if lane_done:
                    self._on_drained()

    async def flush(self) -> None:
        """Write every queued result (kept for the next try if that fails). A batch being
        written meanwhile is written first: once this returns, every result queued before
        the call is written (a run closed at its deadline counts them)."""
        async with self._writing:
            await self._flush()

    async def _flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        # Plain tuples (the sender queues rows, not records): a tenth of the pickling.
        rows = [row for _, row in batch]
        scored = _scored_lanes({lane for lane, _ in batch})
        try:
            try:
                written = await self._db.hot(
                    recording.record_rows, worker_id=self._worker_id, rows=rows, scored=scored
                )
            except results.LeaseLost:
                written = await self._db.hot(
                    recording.record_rows_checked,
                    worker_id=self._worker_id,
                    rows=rows,
                    scored=scored,
                )
        except BaseException:
            self.pending[:0] = batch  # keep them for the next try
            raise
        self.recorded += written
        complete = written == len(batch)
        for n, (lane, row) in enumerate(batch, start=1):
            lane.written(row, counted=complete)
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let answers that arrived meanwhile be timed


def _scored_lanes(lanes: set[Lane]) -> dict[int, int]:
    """Run service id -> serial of the batch's lanes scored live; two lanes of one run
    service in a batch (one stopped, one opened since) are both left unscored."""
    shared = Counter(lane.id for lane in lanes)
    scored: dict[int, int] = {}
    for lane in lanes:
        if shared[lane.id] > 1:
            lane.not_scored()
        elif lane.scored:
            scored[lane.id] = lane.serial
    return scored

"""A lane: one run service as a worker sends it, with its queue of claimed items, its
consumers (one per leased slot), its buffer sizing and its live scores."""

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.dispatch.dispatcher import Target
from gateway.runs.breaker import FailureStreak
from gateway.runs.claims import LanePlan
from gateway.scoring.metrics import ServiceScorer

# A lane's buffer holds about this many seconds of its throughput (at least 2 per slot).
BUFFER_HORIZON_S = 0.5
MAX_BUFFER = 1000
# A lane scores its results as they are recorded up to this many images (about 56 bytes
# each); a larger run is scored from the database when it ends, so memory stays flat.
LIVE_SCORING_MAX_IMAGES = 25_000


@dataclass(slots=True)
class Claim:
    item_id: int
    image_id: int
    claimed_at: float  # monotonic


class Lane:
    """One run service as this worker sends it."""

    def __init__(self, plan: LanePlan, *, breaker_failures: int = 0) -> None:
        self.plan = plan
        self.id = plan.run_service_id
        self.queue: asyncio.Queue[Claim | None] = asyncio.Queue()
        self.buffered = 0
        self.consumers: dict[int, asyncio.Task[None]] = {}  # slot id -> consumer
        self.retiring = 0
        self.in_flight = 0  # taken from the queue, result not yet queued for writing
        self.unflushed = 0  # results not written yet, those held by the streak included
        # (lane, result row, true tags) of its latest silent outcomes, held back.
        self.streak: FailureStreak[tuple[Lane, dict[str, Any], list[str]]] = FailureStreak(
            breaker_failures
        )
        self.dry = False
        self.stopping = False
        self.ongoing = plan.status == "ongoing"
        self.completed = 0
        self.rate = 0.0
        # Grows while consumers find the queue empty (claims too slow for this lane).
        self.boost = 0
        self.starved = False
        # Scores every result as it is recorded, so that closing the lane needs no pass
        # over its items; only trusted if it saw them all (nothing sent before this
        # lane, no other worker, no result lost), which `finish_service` checks.
        self.scorer: ServiceScorer | None = ServiceScorer() if plan.status == "pending" else None
        self.first_sent: datetime | None = None
        self.last_finished: datetime | None = None

    @property
    def target(self) -> Target:
        return self.plan.target

    @property
    def held(self) -> int:
        return len(self.consumers) - self.retiring

    def elapsed_s(self) -> float | None:
        if self.first_sent is None or self.last_finished is None:
            return None
        return (self.last_finished - self.first_sent).total_seconds()

    def score(self, row: dict[str, Any], truth: list[str]) -> None:
        """Add one recorded result to the lane's scorer."""
        self.last_finished = row["finished_at"]
        if self.scorer is None:
            return
        if self.scorer.images >= LIVE_SCORING_MAX_IMAGES:
            self.scorer = None
            return
        try:
            self.scorer.add(
                outcome=row["outcome"],
                tags=[(tag, score) for tag, score in row["tags"]],
                truth=truth,
                latency_ms=row["latency_ms"],
            )
        except ValueError:
            self.scorer = None  # the database pass will say what is wrong

    @property
    def idle(self) -> bool:
        return self.buffered == 0 and self.in_flight == 0 and self.unflushed == 0

    def buffer_target(self) -> int:
        by_rate = math.ceil(self.rate * BUFFER_HORIZON_S)
        return min(MAX_BUFFER, max(2 * self.held, by_rate, self.boost))

    def wants(self) -> int:
        """How many items to claim now: refill to the target once below half of it."""
        if self.stopping or self.dry or self.held <= 0:
            return 0
        target = self.buffer_target()
        return target - self.buffered if self.buffered <= target // 2 else 0

    def tick(self, elapsed_s: float) -> None:
        """Every manager tick: measure the throughput; double the buffer when the lane
        starved since the last tick, let it shrink back when it did not."""
        current = self.completed / elapsed_s if elapsed_s > 0 else 0.0
        self.completed = 0
        self.rate = current if current > self.rate else 0.7 * self.rate + 0.3 * current
        if self.starved:
            self.boost = min(MAX_BUFFER, max(4 * self.held, 2 * self.boost))
        else:
            self.boost //= 2
        self.starved = False

"""A run over time (SPEC §3 `GET /runs/{id}/timeline`), as Locust charts it: per service
and time bucket, how many answers were recorded, how many `ok`, the failures by outcome,
images per second and the latency p50/p99 of the `ok` answers (nearest-rank, as the
leaderboard computes them, gateway.scoring.metrics).

Buckets are `bucket_s` seconds wide from the run's start (its first recorded answer if
it has no start time) and are placed by when each answer was recorded (`finished_at`);
empty buckets are left out. Read-only, streamed a page at a time.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.errors import Outcome
from gateway.runs.finish import done_items
from gateway.runs.models import WORK_ITEMS, Run
from gateway.scoring.metrics import percentile


@dataclass
class Bucket:
    index: int
    done: int = 0
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def latency(self, percent: int) -> float | None:
        return percentile(self.latencies, percent) if self.latencies else None


def timeline_origin(session: Session, run: Run) -> datetime | None:
    """Where bucket 0 starts: the run's start, else its first recorded answer; None when
    nothing started yet."""
    if run.started_at is not None:
        return run.started_at
    first: datetime | None = session.scalar(
        select(func.min(WORK_ITEMS.c.finished_at)).where(WORK_ITEMS.c.run_id == run.id)
    )
    return first


def service_buckets(
    session: Session, *, run_service_id: int, origin: datetime, bucket_s: float
) -> list[Bucket]:
    """The non-empty buckets of one run service, in time order."""
    buckets: dict[int, Bucket] = {}
    width = timedelta(seconds=bucket_s)
    for row in done_items(
        session.connection(),
        run_service_id=run_service_id,
        columns=[WORK_ITEMS.c.outcome, WORK_ITEMS.c.latency_ms, WORK_ITEMS.c.finished_at],
    ):
        if row.finished_at is None:
            continue
        # Answers recorded before the origin (a clock step) go into bucket 0.
        index = max(0, (row.finished_at - origin) // width)
        bucket = buckets.get(index)
        if bucket is None:
            bucket = buckets[index] = Bucket(index)
        bucket.done += 1
        if row.outcome == Outcome.OK.value:
            bucket.ok += 1
            if row.latency_ms is not None:
                bucket.latencies.append(row.latency_ms)
        else:
            bucket.failures[row.outcome] += 1
    return [buckets[k] for k in sorted(buckets)]

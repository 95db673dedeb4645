"""Progress of run services that have no live scores (runs created before migration
0007), read from their work items as before: counts per outcome by one GROUP BY, latency
and throughput over the latest SAMPLE recorded items. New runs never come here
(`gateway.runs.progress` reads `live_scores`); the leaderboard of such a service is its
full rescore (`gateway.runs.finish.service_scores`)."""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from gateway.db import utcnow
from gateway.errors import OUTCOMES, Outcome
from gateway.runs.models import FINAL_STATUSES, ItemState, Run, RunState, ServiceStatus, WorkItem
from gateway.scoring.metrics import PERCENTILES, percentile

# The latest answers that live latency and throughput figures are computed from.
SAMPLE = 2000

# done, total, outcome counts, latency percentiles, images/s, ETA (s)
Figures = tuple[int, int, dict[str, int], dict[str, float | None], float | None, float | None]


def legacy_progress(session: Session, run: Run, members: Sequence[Row[Any]]) -> dict[int, Figures]:
    """The progress figures of `members` (rows of `run_members`) by run service id."""
    if not members:
        return {}
    totals: dict[int, int] = defaultdict(int)
    outcomes: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    query = (
        select(WorkItem.run_service_id, WorkItem.outcome, func.count())
        .where(WorkItem.run_id == run.id, WorkItem.run_service_id.in_([m.id for m in members]))
        .group_by(WorkItem.run_service_id, WorkItem.outcome)
    )
    for run_service_id, outcome, count in session.execute(query):
        totals[run_service_id] += count
        if outcome is not None:
            outcomes[run_service_id][outcome] = outcomes[run_service_id].get(outcome, 0) + count
    figures: dict[int, Figures] = {}
    for m in members:
        counts = outcomes[m.id]
        done = sum(counts.values())
        total = totals[m.id]
        if m.status in FINAL_STATUSES and m.scores:
            latency = {k: m.scores["latency_ms"].get(k) for k, _ in PERCENTILES}
            rate: float | None = m.scores.get("images_per_s")
            eta: float | None = 0.0
        else:
            latency, rate = _recent(session, m.id, running=run.state == RunState.RUNNING)
            remaining = total - done
            sending = run.state == RunState.RUNNING and m.status != ServiceStatus.DOWN
            eta = remaining / rate if rate and sending else None
        figures[m.id] = (done, total, counts, latency, rate, eta)
    return figures


def item_count(session: Session, run_service_id: int) -> int:
    """How many images a run service has in its run."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(WorkItem)
            .where(WorkItem.run_service_id == run_service_id)
        )
        or 0
    )


def _recent(
    session: Session, run_service_id: int, *, running: bool
) -> tuple[dict[str, float | None], float | None]:
    """Latency percentiles of the `ok` answers and the throughput over the latest SAMPLE
    recorded items (read through the claim index, newest `seq` first)."""
    rows = session.execute(
        select(WorkItem.outcome, WorkItem.latency_ms, WorkItem.finished_at)
        .where(WorkItem.run_service_id == run_service_id, WorkItem.state == ItemState.DONE)
        .order_by(WorkItem.seq.desc())
        .limit(SAMPLE)
    ).all()
    ok = [r.latency_ms for r in rows if r.outcome == Outcome.OK and r.latency_ms is not None]
    latency: dict[str, float | None] = {
        name: (percentile(ok, p) if ok else None) for name, p in PERCENTILES
    }
    finished = [r.finished_at for r in rows if r.finished_at is not None]
    rate = None
    if finished:
        end = utcnow() if running else max(finished)
        span = (end - min(finished)).total_seconds()
        count = len(finished) if running else len(finished) - 1
        rate = count / span if span > 0 and count > 0 else None
    return latency, rate

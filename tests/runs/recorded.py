"""Runs whose work items a test claims and records itself, straight through the claim
functions a worker uses (no worker, no recognizer): the state under scores and leases."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from gateway.config import Settings
from gateway.runs import models, results
from gateway.runs.engine import store
from gateway.runs.engine.store import ClaimedItem
from gateway.runs.engine.surveyor import survey_runs
from gateway.runs.results import ResultRecord
from gateway.scoring.split import Split
from tests.runs.builders import add_dataset, add_service, make_images
from tests.runs.conftest import start_run

T0 = datetime(2026, 1, 1, 12, 0, 0)
FAR_AHEAD = T0 + timedelta(days=1)


@dataclass
class Lane:
    """One run service with all its items claimed by worker "w" (seq order), and the true
    label of each item's image."""

    run_id: int
    id: int
    items: list[ClaimedItem]
    truth: dict[int, str]


def open_run(
    engine: Engine,
    settings: Settings,
    data_dir: Path,
    n: int,
    *,
    phase: str = "dryrun",
    services: int = 2,
    split: Split | None = None,
) -> list[Lane]:
    """A run of `n` images against `services` new services (split so if `split` is
    given); every item claimed, none recorded."""
    dataset = add_dataset(engine, data_dir, make_images(n, label=lambda i: f"label{i}"))
    guids = [add_service(engine, ["http://127.0.0.1:9"]) for _ in range(services)]
    run_id = start_run(
        engine, settings, dataset=dataset, phase=phase, service_guids=guids, split=split
    )
    with engine.begin() as conn:
        plans = survey_runs(conn, now=T0, live_since=T0).lanes
        lanes = []
        for plan in plans:
            if plan.run_id != run_id:
                continue
            got, refs = store.claim_items(
                conn,
                worker_id="w",
                wants={plan.run_service_id: n},
                mark_ongoing=[],
                now=T0,
                expires=FAR_AHEAD,
            )
            items = got[plan.run_service_id]
            truth = {ref.image_id: ref.truth[0] for ref in refs.values()}
            lanes.append(Lane(run_id, plan.run_service_id, items, truth))
    return lanes


Answer = Callable[[int, ClaimedItem, str], dict[str, Any]]


def ok(tag: str, *, latency_ms: float = 10.0, at: datetime = T0) -> dict[str, Any]:
    return {
        "outcome": "ok",
        "latency_ms": latency_ms,
        "http_status": 200,
        "tags": [[tag, 0.9], ["other", 0.1]],
        "detail": None,
        "finished_at": at,
    }


def failed(outcome: str, detail: str | None = None, status: int | None = None) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "latency_ms": None,
        "http_status": status,
        "tags": None,
        "detail": detail,
        "finished_at": T0,
    }


def record(
    engine: Engine, lane: Lane, answer: Answer, positions: Iterable[int] | None = None
) -> None:
    """Record the answers of the items at `positions` (default: all) of `lane`."""
    chosen = list(positions) if positions is not None else list(range(len(lane.items)))
    records = []
    for position in chosen:
        item = lane.items[position]
        fields = answer(position, item, lane.truth[item.image_id])
        records.append(
            ResultRecord(
                item_id=item.item_id,
                run_service_id=lane.id,
                attempts=1,
                queue_ms=0.0,
                request_id=f"req-{lane.id}-{position}",
                raw=None,
                attempt_log=[],
                **fields,
            )
        )
    with engine.begin() as conn:
        assert results.record_results(conn, worker_id="w", results=records) == len(records)


def status_of(engine: Engine, lane: Lane) -> tuple[str, str | None, dict[str, Any] | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(
                models.RUN_SERVICES.c.status,
                models.RUN_SERVICES.c.reason,
                models.RUN_SERVICES.c.scores,
            ).where(models.RUN_SERVICES.c.id == lane.id)
        ).one()
    return row.status, row.reason, row.scores

"""The evaluation window (SPEC §3): a run waits for its `start_at`, and stops at its
`deadline` with what was not answered recorded `missed`; on SQLite and PostgreSQL."""

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.config import Settings
from gateway.datasets.models import DatasetImage
from gateway.db import utcnow
from gateway.protocol.signing import body_digest
from gateway.runs import service
from gateway.runs.models import Run, Worker
from tests.runs.builders import (
    add_dataset,
    add_service,
    item_counts,
    make_images,
    recognizer_app,
    run_state,
    statuses,
    work_items,
)
from tests.runs.conftest import running_worker, start_run, wait_until


def worker_registered(engine: Engine) -> bool:
    with Session(engine) as session:
        return session.scalar(select(Worker.id)) is not None


async def test_a_scheduled_run_stays_queued_until_its_start(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    images = make_images(4)
    arrived: list[datetime] = []

    def answer(body: bytes) -> str:
        arrived.append(utcnow())
        return "dog:0.9"

    app, seen = recognizer_app(answer)
    dataset = add_dataset(run_engine, data_dir, images)
    guid = add_service(run_engine, [serve(app)])
    start_at = utcnow() + timedelta(seconds=2)
    run_id = start_run(run_engine, settings, dataset=dataset, phase="evaluation", start_at=start_at)

    async with running_worker(run_engine, settings):
        await wait_until(lambda: worker_registered(run_engine), "the worker to register")
        # The worker surveys every 0.05 s: until start_at it leaves the run alone.
        while utcnow() < start_at - timedelta(seconds=0.3):
            assert run_state(run_engine, run_id) == "queued"
            assert seen.requests == 0
            await asyncio.sleep(0.05)
        await wait_until(lambda: run_state(run_engine, run_id) == "completed", "the run")

    assert seen.requests == 4 and len(arrived) == 4
    assert min(arrived) >= start_at, "a request reached the recognizer before start_at"
    assert statuses(run_engine, run_id) == {guid: "passed"}
    with Session(run_engine) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.started_at is not None
        assert run.started_at >= start_at and not run.stopped_at_deadline


def gated_recognizer(never: set[str], release: threading.Event) -> tuple[Starlette, list[str]]:
    """Answers `dog:0.9` at once, except to images whose digest is in `never`: those wait
    until `release` is set (the test sets it only to shut the server down)."""
    held: list[str] = []

    async def ping(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def recognize(request: Request) -> Response:
        digest = body_digest(await request.body())
        if digest in never:
            held.append(digest)
            while not release.is_set():
                await asyncio.sleep(0.01)
        return PlainTextResponse("dog:0.9")

    app = Starlette(routes=[Route("/ping", ping), Route("/recognize", recognize, methods=["POST"])])
    return app, held


async def test_at_its_deadline_a_run_records_missed_and_completes(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    images = make_images(6, label=lambda i: "dog")
    never = {image.digest for image in images[:2]}
    release = threading.Event()
    app, held = gated_recognizer(never, release)
    dataset = add_dataset(run_engine, data_dir, images)
    guid = add_service(run_engine, [serve(app)])
    deadline = datetime.now(UTC) + timedelta(seconds=2)
    # A request timeout far past the deadline: only the deadline can end the held ones.
    run_id = start_run(
        run_engine,
        settings,
        dataset=dataset,
        phase="evaluation",
        deadline=deadline,
        concurrency=4,
        timeout_s=300,
        max_attempts=1,
    )
    try:
        async with running_worker(run_engine, settings):
            await wait_until(lambda: len(held) == 2, "both held images to reach the recognizer")
            assert run_state(run_engine, run_id) == "running"
            await wait_until(lambda: run_state(run_engine, run_id) == "completed", "the deadline")
            assert not release.is_set()  # the held requests never got their answer
    finally:
        release.set()

    assert item_counts(run_engine, run_id) == {"done": 6}
    digests = {image.key: image.digest for image in images}
    with Session(run_engine) as session:
        keys = {
            row.id: row.key for row in session.execute(select(DatasetImage.id, DatasetImage.key))
        }
    outcomes = {
        digests[keys[item.image_id]]: item.outcome for item in work_items(run_engine, run_id)
    }
    assert {d for d, outcome in outcomes.items() if outcome == "missed"} == never
    assert {d for d, outcome in outcomes.items() if outcome == "ok"} == set(outcomes) - never
    missed = [item for item in work_items(run_engine, run_id) if item.outcome == "missed"]
    assert all("deadline" in (item.detail or "") for item in missed)
    # An evaluation passes a service that answered something; its scores count the
    # missed images as wrong.
    assert statuses(run_engine, run_id) == {guid: "passed"}
    with Session(run_engine) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.stopped_at_deadline and run.finished_at is not None
        (row,) = service.leaderboard(session, run_id=run_id)
        assert row["images"] == 6
        assert row["outcomes"]["ok"] == 4 and row["outcomes"]["missed"] == 2
        assert abs(row["top1"] - 4 / 6) < 1e-9

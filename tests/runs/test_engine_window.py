"""The evaluation window (SPEC §3): a run waits for its `start_at`, and stops at its
`deadline` with what was not answered recorded `missed`; on SQLite and PostgreSQL."""

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.config import Settings
from gateway.datasets.models import DatasetImage
from gateway.db import is_sqlite, utcnow
from gateway.protocol.signing import body_digest
from gateway.runs import service
from gateway.runs.models import Run, RunService, Worker
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


def reach_deadline(engine: Engine, run_id: int) -> None:
    """Bring the run's deadline forward to now: the test first waits, by condition, for
    the state it wants at the deadline, so no machine is too slow for it."""
    with Session(engine) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.deadline is not None
        run.deadline = utcnow()
        session.commit()


def ok_count(engine: Engine, run_id: int) -> int:
    return sum(item.outcome == "ok" for item in work_items(engine, run_id))


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
    deadline = datetime.now(UTC) + timedelta(hours=1)
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
            await wait_until(lambda: ok_count(run_engine, run_id) == 4, "the others recorded")
            assert run_state(run_engine, run_id) == "running"
            reach_deadline(run_engine, run_id)
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


@pytest.fixture
def unlistened_url() -> Iterator[str]:
    """A local port bound but not listening: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("workers", [1, 2])
async def test_the_deadline_closes_held_and_paused_services_once(
    run_engine: Engine,
    settings: Settings,
    data_dir: Path,
    serve: Any,
    unlistened_url: str,
    workers: int,
) -> None:
    """With a service paused by the breaker and one holding requests, each worker stops
    at the deadline and the run is closed once: every item recorded exactly once."""
    if workers > 1 and is_sqlite(settings.database_url):
        pytest.skip("several workers need PostgreSQL")
    settings = settings.model_copy(
        update={"breaker_failures": 3, "breaker_probe_s": 0.05, "breaker_probe_max_s": 0.2}
    )
    images = make_images(8, label=lambda i: "dog")
    never = {image.digest for image in images[:3]}
    release = threading.Event()
    app, held = gated_recognizer(never, release)
    dataset = add_dataset(run_engine, data_dir, images)
    # Slots to spare past the held requests in each worker (ceil(8 / 2) = 4 > 3): a worker
    # whose every slot is held would keep the items it buffered unsent.
    holding = add_service(run_engine, [serve(app)], name="holding", max_concurrency=8)
    dead = add_service(run_engine, [unlistened_url], name="dead", max_concurrency=2)
    run_id = start_run(
        run_engine,
        settings,
        dataset=dataset,
        phase="evaluation",
        deadline=utcnow() + timedelta(hours=1),
        timeout_s=300,
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(workers):
                await stack.enter_async_context(running_worker(run_engine, settings))
            await wait_until(lambda: len(held) >= 3, "the held images to reach the recognizer")
            await wait_until(lambda: ok_count(run_engine, run_id) == 5, "the others recorded")
            await wait_until(lambda: statuses(run_engine, run_id)[dead] == "down", "the breaker")
            reach_deadline(run_engine, run_id)
            await wait_until(lambda: run_state(run_engine, run_id) == "completed", "the deadline")
            assert not release.is_set()
    finally:
        release.set()

    items = work_items(run_engine, run_id)
    assert len(items) == 16 and all(item.state == "done" for item in items)
    with Session(run_engine) as session:
        board = {row["service_guid"]: row for row in service.leaderboard(session, run_id=run_id)}
    assert board[holding]["outcomes"]["ok"] == 5 and board[holding]["outcomes"]["missed"] == 3
    dead_outcomes = board[dead]["outcomes"]
    # The breaker recorded the failures that tripped it (the service never answered);
    # the rest were waiting unsent, paused, and are missed.
    assert dead_outcomes["ok"] == 0 and dead_outcomes["connect_error"] >= 3
    assert dead_outcomes["connect_error"] + dead_outcomes["missed"] == 8
    assert dead_outcomes["missed"] >= 1
    assert statuses(run_engine, run_id) == {holding: "passed", dead: "failed"}
    with Session(run_engine) as session:
        reasons = session.scalars(select(RunService.reason).where(RunService.run_id == run_id))
        assert any("no image ended ok" in (r or "") and "missed" in (r or "") for r in reasons)

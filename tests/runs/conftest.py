"""Fixtures of the engine tests: a migrated database (SQLite and PostgreSQL), hub
settings, live recognizers, and an in-process worker to run against them."""

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.db import is_sqlite, make_engine
from gateway.dispatch.client import make_client_session
from gateway.dispatch.dispatcher import Dispatcher
from gateway.migrate import upgrade
from gateway.runs import service
from gateway.runs.engine.worker import DispatchWorker
from tests.builders import hub_settings
from tests.servers import live_server

# Generous bounds that only stop a hung test; no test asserts on time.
WAIT_S = 60.0


@pytest.fixture
def run_engine(database_url: str) -> Iterator[Engine]:
    """A migrated database on SQLite and on PostgreSQL."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(database_url: str, run_engine: Engine, data_dir: Path) -> Settings:
    return hub_settings(  # type: ignore[no-any-return]
        database_url,
        data_dir,
        lease_s=5.0,
        heartbeat_s=0.5,
        result_flush_s=0.05,
        result_batch_size=50,
    )


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """Start an ASGI app on 127.0.0.1 for the test; returns its URL."""
    with contextlib.ExitStack() as stack:

        def start(app: Any) -> str:
            return stack.enter_context(live_server(app)).url

        yield start


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts (`recoghub worker`s), killed if still running at its end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@contextlib.asynccontextmanager
async def running_worker(
    engine: Engine, settings: Settings, **options: Any
) -> AsyncIterator[DispatchWorker]:
    """A DispatchWorker in this event loop, stopped cleanly at the end of the block."""
    http = make_client_session(settings)
    worker = DispatchWorker(
        engine=engine,
        dispatcher=Dispatcher(http, settings),
        settings=settings,
        exclusive=is_sqlite(settings.database_url),
        poll_s=options.pop("poll_s", 0.05),
        **options,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task
        await http.close()


async def wait_until(check: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    """Poll `check` (run in a thread) until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


def start_run(engine: Engine, settings: Settings, **options: Any) -> int:
    with Session(engine) as session:
        return service.create_run(session, settings=settings, **options).id

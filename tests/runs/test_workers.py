"""Worker processes: a hub killed mid-run resumes by itself on SQLite; SQLite refuses a
second worker; on PostgreSQL several workers share a run and survive one being killed."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, make_url, select
from sqlalchemy.orm import Session

from gateway.db import make_engine
from gateway.migrate import upgrade
from gateway.runs.engine.process import run_embedded_worker, worker_lock
from gateway.runs.models import RunService, ServiceSlot, Worker, WorkItem
from gateway.state import HubState
from tests.builders import LOOPBACK_ALLOWED, hub_settings
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
from tests.runs.conftest import start_run

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60.0
REFUSAL = "SQLite allows one worker; use PostgreSQL for several"


def spawn_worker(
    database_url: str, data_dir: Path, log: Path | None = None, **env: str
) -> subprocess.Popen[str]:
    """A `recoghub worker` process; its stderr goes to `log` when given (a worker that
    logs a lot, e.g. during a database outage, must not block on a full pipe)."""
    environment = {
        **os.environ,
        "RECOGHUB_DATABASE_URL": database_url,
        "RECOGHUB_DATA_DIR": str(data_dir),
        "RECOGHUB_ENDPOINT_ALLOW": LOOPBACK_ALLOWED,
        "RECOGHUB_TIMING_BOUND_MS": "0",
        "RECOGHUB_LEASE_S": "1.5",
        "RECOGHUB_HEARTBEAT_S": "0.25",
        "RECOGHUB_RESULT_FLUSH_S": "0.05",
        "RECOGHUB_RESULT_BATCH_SIZE": "20",
        **env,
    }
    errors = subprocess.PIPE if log is None else log.open("w")
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.runs.worker_process",
                "--log-level",
                os.environ.get("DBG_LOG", "warning"),
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    finally:
        if log is not None:
            errors.close()  # the child has its own copy


def wait_for(
    check: Callable[[], Any],
    what: str,
    procs: list[subprocess.Popen[str]],
    state: Callable[[], str] | None = None,
) -> Any:
    """Poll `check` until it is truthy; fail early if a worker process died. On giving up
    the message carries `state()`, e.g. the run's lease state, to say why it hung."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = check()
        if value:
            return value
        for proc in procs:
            if proc.poll() is not None and proc.returncode not in (0, -signal.SIGKILL):
                _, err = proc.communicate()
                raise AssertionError(f"worker exited with {proc.returncode}: {err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}" + (f"\n{state()}" if state else ""))
        time.sleep(0.02)


def lease_state(engine: Engine, run_id: int) -> str:
    """Work items by state and lease owner, every slot's lease and every worker's row of a
    run: what a hung run is waiting for."""
    with Session(engine) as session:
        items = session.execute(
            select(WorkItem.run_service_id, WorkItem.state, WorkItem.lease_owner, func.count())
            .where(WorkItem.run_id == run_id)
            .group_by(WorkItem.run_service_id, WorkItem.state, WorkItem.lease_owner)
        ).all()
        leased = session.execute(
            select(WorkItem.id, WorkItem.lease_owner, WorkItem.lease_expires_at)
            .where(WorkItem.run_id == run_id, WorkItem.state == "leased")
            .order_by(WorkItem.seq)
            .limit(20)
        ).all()
        slots = session.execute(
            select(
                ServiceSlot.run_service_id,
                ServiceSlot.slot,
                ServiceSlot.lease_owner,
                ServiceSlot.lease_expires_at,
            )
            .join(RunService, RunService.id == ServiceSlot.run_service_id)
            .where(RunService.run_id == run_id)
        ).all()
        services = session.execute(
            select(RunService.id, RunService.status).where(RunService.run_id == run_id)
        ).all()
        workers = session.execute(select(Worker.id, Worker.pid, Worker.heartbeat_at)).all()
    lines = [f"now (UTC) {datetime.now(UTC).replace(tzinfo=None)}, run {run_state(engine, run_id)}"]
    lines += [f"run service {row[0]}: {row[1]}" for row in services]
    lines += [f"items of run service {r[0]}, {r[1]}, owner {r[2]}: {r[3]}" for r in items]
    lines += [f"leased item {r[0]} by {r[1]} until {r[2]}" for r in leased]
    lines += [f"slot {r[1]} of run service {r[0]}: owner {r[2]} until {r[3]}" for r in slots]
    lines += [f"worker {r[0]} (pid {r[1]}) heartbeat {r[2]}" for r in workers]
    return "\n".join(lines)


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, as an operator would; returns stderr and checks the clean exit."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def assert_each_item_recorded_once(engine: Engine, run_id: int, total: int, sent: set[str]) -> None:
    items = work_items(engine, run_id)
    assert len(items) == total
    assert len({(i.run_service_id, i.image_id) for i in items}) == total
    assert all(i.state == "done" and i.outcome == "ok" for i in items)
    request_ids = [i.request_id for i in items]
    assert len(set(request_ids)) == total  # one answer each, from a request really sent
    assert set(request_ids) <= sent


def test_a_killed_hub_resumes_by_itself_with_nothing_lost_or_repeated(
    tmp_path: Path, serve: Any, procs: list[subprocess.Popen[str]]
) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    data_dir = tmp_path / "data"
    engine = make_engine(url)
    upgrade(engine)
    images = make_images(80)
    dataset = add_dataset(engine, data_dir, images)
    seen = []
    for _ in range(2):
        app, log = recognizer_app(lambda b: "x:1", delay_s=0.02)
        add_service(engine, [serve(app)], max_concurrency=2)
        seen.append(log)
    run_id = start_run(engine, hub_settings(url, data_dir), dataset=dataset, phase="dryrun")

    first = spawn_worker(url, data_dir)
    procs.append(first)
    wait_for(lambda: item_counts(engine, run_id).get("done", 0) >= 30, "progress", procs)
    first.kill()  # kill -9: no clean-up at all
    first.communicate()
    left = item_counts(engine, run_id)
    assert left.get("leased", 0) > 0 and left.get("pending", 0) > 0

    second = spawn_worker(url, data_dir)
    procs.append(second)
    wait_for(lambda: run_state(engine, run_id) == "completed", "the run to complete", procs)
    stop(second)

    assert set(statuses(engine, run_id).values()) == {"passed"}
    sent = {rid for log in seen for rid in log.request_ids}
    assert_each_item_recorded_once(engine, run_id, 160, sent)
    assert sum(log.requests for log in seen) >= 160
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Worker)) == 0
    engine.dispose()


def test_sqlite_refuses_a_second_worker(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    with worker_lock(url) as exclusive:
        assert exclusive
        second = spawn_worker(url, tmp_path / "data")
        _, err = second.communicate(timeout=30)
    assert second.returncode == 1
    assert REFUSAL in err and "hub.db.worker.lock" in err
    assert "Traceback" not in err


async def test_the_hub_serves_the_api_only_when_another_worker_holds_sqlite(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    state = HubState(hub_settings(url, tmp_path), None, None, None, None)  # type: ignore[arg-type]
    stop_event = asyncio.Event()
    with worker_lock(url):
        task = asyncio.create_task(run_embedded_worker(state, stop_event))
        await asyncio.sleep(0.05)
        assert not task.done()
        stop_event.set()
        await task
    assert state.worker is None


def test_an_unmigrated_database_is_refused_clearly(tmp_path: Path) -> None:
    proc = spawn_worker(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path / "data")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "recoghub migrate" in err and "Traceback" not in err


@pytest.mark.postgres
def test_postgres_workers_share_a_run_and_take_over_a_killed_one(
    postgres: Any, tmp_path: Path, serve: Any, procs: list[subprocess.Popen[str]]
) -> None:
    url = postgres.new()
    data_dir = tmp_path / "data"
    engine = make_engine(url)
    images = make_images(90)
    dataset = add_dataset(engine, data_dir, images)
    seen = []
    for _ in range(2):
        app, log = recognizer_app(lambda b: "x:1", delay_s=0.03)
        add_service(engine, [serve(app)], max_concurrency=3)
        seen.append(log)
    procs.extend(spawn_worker(url, data_dir) for _ in range(3))

    def registered() -> int:
        with Session(engine) as session:
            return int(session.scalar(select(func.count()).select_from(Worker)) or 0)

    # All three alive before the run starts: each takes its share (1 of 3 slots).
    wait_for(lambda: registered() == 3, "three workers", procs)
    run_id = start_run(engine, hub_settings(url, data_dir), dataset=dataset, phase="dryrun")
    wait_for(lambda: item_counts(engine, run_id).get("done", 0) >= 40, "progress", procs)

    def leased_by() -> dict[int, int]:
        """pid of each worker holding leased items -> how many."""
        with Session(engine) as session:
            rows = session.execute(
                select(Worker.pid, func.count())
                .join(WorkItem, WorkItem.lease_owner == Worker.id)
                .where(WorkItem.run_id == run_id, WorkItem.state == "leased")
                .group_by(Worker.pid)
            ).all()
            return {int(pid): int(n) for pid, n in rows}

    holders = wait_for(leased_by, "a worker holding items", procs)
    victim = next(p for p in procs if p.pid in holders)
    victim.kill()
    victim.communicate()

    wait_for(lambda: run_state(engine, run_id) == "completed", "the run to complete", procs)
    for proc in procs:
        if proc is not victim:
            stop(proc)

    assert set(statuses(engine, run_id).values()) == {"passed"}
    sent = {rid for log in seen for rid in log.request_ids}
    assert_each_item_recorded_once(engine, run_id, 180, sent)
    # The bound held across all workers together, and the work was split.
    assert all(log.max_in_flight <= 3 for log in seen)
    owners = {i.lease_owner for i in work_items(engine, run_id)}
    assert len(owners) >= 2
    engine.dispose()


class FlakyProxy:
    """A TCP proxy in front of PostgreSQL that can cut every connection and refuse new
    ones for a while: the network between a worker and its database failing."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.down = False
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        for writer in self._writers:
            writer.transport.abort()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def start(self) -> "FlakyProxy":
        self._thread.start()
        self._ready.wait(10)
        return self

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until `restore`."""

        def close_all() -> None:
            self.down = True
            for writer in list(self._writers):
                writer.transport.abort()

        self._loop.call_soon_threadsafe(close_all)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "down", False)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.mark.postgres
def test_a_worker_that_loses_its_database_for_a_while_recovers(
    postgres: Any, tmp_path: Path, serve: Any, procs: list[subprocess.Popen[str]]
) -> None:
    url = postgres.new()
    data_dir = tmp_path / "data"
    engine = make_engine(url)
    dataset = add_dataset(engine, data_dir, make_images(60))
    app, log = recognizer_app(lambda b: "x:1", delay_s=0.02)
    add_service(engine, [serve(app)], max_concurrency=2)
    parsed = make_url(url)
    proxy = FlakyProxy(parsed.host or "127.0.0.1", parsed.port or 5432).start()
    try:
        through_proxy = parsed.set(host="127.0.0.1", port=proxy.port)
        procs.append(
            spawn_worker(
                through_proxy.render_as_string(hide_password=False),
                data_dir,
                log=tmp_path / "worker.log",
                RECOGHUB_LEASE_S="10",
            )
        )
        run_id = start_run(engine, hub_settings(url, data_dir), dataset=dataset, phase="dryrun")
        # Short cuts at several points, then a long one: a cut may land while a claim or
        # a slot lease commits and its answer is lost, which once left items leased to
        # a live worker for ever (the run hung).
        for n, outage_s in enumerate((0.3, 0.3, 0.3, 2.0), start=1):
            wait_for(
                lambda n=n: item_counts(engine, run_id).get("done", 0) >= 10 * n,  # type: ignore[misc]
                "progress",
                procs,
                state=lambda: lease_state(engine, run_id),
            )
            proxy.cut()
            time.sleep(outage_s)  # the worker's calls fail; it keeps its results and retries
            assert procs[0].poll() is None, "the worker died with its database connection"
            proxy.restore()

        wait_for(
            lambda: run_state(engine, run_id) == "completed",
            "the run to complete",
            procs,
            state=lambda: lease_state(engine, run_id),
        )
        stop(procs[0])
    finally:
        proxy.close()
    assert "failed; retrying" in (tmp_path / "worker.log").read_text()  # it did lose it

    assert set(statuses(engine, run_id).values()) == {"passed"}
    assert_each_item_recorded_once(engine, run_id, 60, set(log.request_ids))
    engine.dispose()

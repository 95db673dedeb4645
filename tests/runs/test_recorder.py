"""The recording process (`engine.recorder`): a worker whose statements all run in a child
process completes a run exactly once; an exception raised there reaches the caller with
its type; a `recoghub worker` killed with -9 leaves no recording process behind; a
recording process killed mid-run stops its worker, which starts again (embedded) or is
started again (`recoghub worker`), and the run still completes exactly once; a lane is
finished with the live scorer its results were added to where they were recorded."""

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import Connection, Engine, text

from gateway.config import Settings
from gateway.db import make_engine, make_session_factory, utcnow
from gateway.dispatch.client import make_client_session
from gateway.dispatch.dispatcher import Dispatcher
from gateway.migrate import upgrade
from gateway.runs import finish, results
from gateway.runs.engine import process, recording
from gateway.runs.engine.process import run_embedded_worker
from gateway.runs.engine.recorder import Recorder, RecorderError, RecorderGone
from gateway.runs.records import ResultRecord
from gateway.state import HubState
from tests.builders import hub_settings
from tests.runs.builders import (
    add_dataset,
    add_service,
    item_counts,
    make_images,
    recognizer_app,
    run_state,
    statuses,
)
from tests.runs.conftest import running_worker, start_run, wait_until
from tests.runs.test_workers import (
    assert_each_item_recorded_once,
    spawn_worker,
    stop,
    wait_for,
)


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def fail_unpicklably(conn: Connection) -> None:
    raise Unpicklable("with a lock")


def fail_plainly(conn: Connection, *, number: int) -> None:
    conn.execute(text("SELECT 1"))
    raise KeyError(number)


def one(conn: Connection) -> int:
    return int(conn.execute(text("SELECT 1")).scalar_one())


async def test_a_worker_over_a_recording_process_completes_a_run_exactly_once(
    run_engine: Engine, settings: Settings, serve: Any
) -> None:
    images = make_images(60)
    dataset = add_dataset(run_engine, settings.data_dir, images)
    logs = []
    for _ in range(2):
        app, log = recognizer_app(lambda b: "x:1", delay_s=0.005)
        add_service(run_engine, [serve(app)], max_concurrency=2)
        logs.append(log)
    run_id = start_run(run_engine, settings, dataset=dataset, phase="dryrun")
    recorder = await Recorder.start(settings.database_url)
    async with running_worker(run_engine, settings, db=recorder):
        await wait_until(lambda: run_state(run_engine, run_id) == "completed", "the run")
    assert set(statuses(run_engine, run_id).values()) == {"passed"}
    sent = {rid for log in logs for rid in log.request_ids}
    assert_each_item_recorded_once(run_engine, run_id, 120, sent)
    assert recorder._process.exitcode == 0  # stopped with the worker


async def test_an_exception_raised_in_the_recording_process_reaches_the_caller(
    run_engine: Engine, settings: Settings
) -> None:
    recorder = await Recorder.start(settings.database_url)
    try:
        lost_item = ResultRecord(
            item_id=987654,
            run_service_id=1,
            outcome="ok",
            attempts=1,
            latency_ms=1.0,
            queue_ms=0.0,
            http_status=200,
            request_id="r",
            raw="x:1",
            tags=[("x", 1.0)],
            detail=None,
            attempt_log=None,
            finished_at=utcnow(),
        )
        with pytest.raises(results.LeaseLost):
            await recorder.hot(results.record_scored, worker_id="nobody", batch=[lost_item])
        with pytest.raises(KeyError) as raised:
            await recorder.cold(fail_plainly, number=7)
        assert raised.value.args == (7,)
        assert any("in the recording process" in note for note in raised.value.__notes__)
        with pytest.raises(RecorderError, match="Unpicklable"):
            await recorder.hot(fail_unpicklably)
        # Many calls in flight at once, each answered.
        assert await asyncio.gather(*(recorder.hot(one) for _ in range(50))) == [1] * 50
    finally:
        await recorder.close()
    assert recorder._process.exitcode == 0


async def test_a_recording_process_that_dies_fails_every_call_clearly(
    run_engine: Engine, settings: Settings
) -> None:
    recorder = await Recorder.start(settings.database_url)
    assert await recorder.hot(one) == 1
    os.kill(recorder.pid or 0, signal.SIGKILL)
    gone = await asyncio.wait_for(recorder.lost(), 30)
    assert isinstance(gone, RecorderGone) and "died" in str(gone)
    with pytest.raises(RecorderGone):
        await recorder.cold(one)
    await recorder.close()


def _recorder_of(proc: subprocess.Popen[str]) -> psutil.Process:
    """The recording process of a `recoghub worker` process, once it has started (the
    other child of a process that spawns is multiprocessing's resource tracker)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for child in psutil.Process(proc.pid).children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if "spawn_main" in " ".join(child.cmdline()):
                    return child
        time.sleep(0.02)
    raise AssertionError("the worker started no recording process")


def _setup_run(
    url: str, data_dir: Path, serve: Any, count: int
) -> tuple[Engine, int, list[Any], threading.Event]:
    """A run of `count` images for two services, and `slow`: while it is set, the
    recognizers answer slowly enough that the run is still going when the test kills a
    process; the test clears it once it has, so that the rest goes at full speed."""
    engine = make_engine(url)
    upgrade(engine)
    dataset = add_dataset(engine, data_dir, make_images(count))
    slow = threading.Event()
    slow.set()
    logs = []
    for _ in range(2):
        app, log = recognizer_app(lambda b: "x:1", delay_s=lambda: 0.05 if slow.is_set() else 0)
        add_service(engine, [serve(app)], max_concurrency=2)
        logs.append(log)
    run_id = start_run(engine, hub_settings(url, data_dir), dataset=dataset, phase="dryrun")
    return engine, run_id, logs, slow


def test_a_worker_killed_leaves_no_recording_process_and_a_new_one_finishes(
    database_url: str, tmp_path: Path, serve: Any, procs: list[subprocess.Popen[str]]
) -> None:
    data_dir = tmp_path / "data"
    engine, run_id, logs, slow = _setup_run(database_url, data_dir, serve, 80)
    first = spawn_worker(database_url, data_dir, RECOGHUB_LEASE_S="1.5")
    procs.append(first)
    recorder = _recorder_of(first)
    wait_for(lambda: item_counts(engine, run_id).get("done", 0) >= 30, "progress", procs)
    first.kill()  # kill -9: the worker does nothing more
    first.communicate()
    slow.clear()
    recorder.wait(timeout=30)  # its socket reached end of file: it exits by itself
    assert not recorder.is_running()

    second = spawn_worker(database_url, data_dir)
    procs.append(second)
    wait_for(lambda: run_state(engine, run_id) == "completed", "the run to complete", procs)
    stop(second)
    assert set(statuses(engine, run_id).values()) == {"passed"}
    sent = {rid for log in logs for rid in log.request_ids}
    assert_each_item_recorded_once(engine, run_id, 160, sent)
    engine.dispose()


def test_a_recording_process_killed_stops_the_worker_with_one_clear_line(
    database_url: str, tmp_path: Path, serve: Any, procs: list[subprocess.Popen[str]]
) -> None:
    data_dir = tmp_path / "data"
    engine, run_id, logs, slow = _setup_run(database_url, data_dir, serve, 80)
    first = spawn_worker(database_url, data_dir, log=tmp_path / "first.log")
    procs.append(first)
    recorder = _recorder_of(first)
    wait_for(lambda: item_counts(engine, run_id).get("done", 0) >= 30, "progress", procs)
    assert run_state(engine, run_id) != "completed"
    recorder.kill()
    first.communicate(timeout=60)
    slow.clear()
    err = (tmp_path / "first.log").read_text()
    assert first.returncode == 1
    assert "recoghub worker: the recording process" in err and "start it again" in err
    procs.remove(first)  # its exit status 1 was expected

    second = spawn_worker(database_url, data_dir)
    procs.append(second)
    wait_for(lambda: run_state(engine, run_id) == "completed", "the run to complete", procs)
    stop(second)
    assert set(statuses(engine, run_id).values()) == {"passed"}
    sent = {rid for log in logs for rid in log.request_ids}
    assert_each_item_recorded_once(engine, run_id, 160, sent)
    engine.dispose()


async def test_the_embedded_worker_starts_again_when_its_recording_process_dies(
    database_url: str, tmp_path: Path, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "RESTART_PAUSE_S", 0.1)
    data_dir = tmp_path / "data"
    engine, run_id, logs, slow = await asyncio.to_thread(
        _setup_run, database_url, data_dir, serve, 80
    )
    settings = hub_settings(database_url, data_dir, lease_s=1.5, heartbeat_s=0.25)
    http = make_client_session(settings)
    state = HubState(
        settings, engine, make_session_factory(engine), http, Dispatcher(http, settings)
    )
    stop_event = asyncio.Event()
    task = asyncio.create_task(run_embedded_worker(state, stop_event))
    try:
        await wait_until(lambda: item_counts(engine, run_id).get("done", 0) >= 30, "progress")
        first = state.worker
        assert first is not None and isinstance(first.db, Recorder)
        assert run_state(engine, run_id) != "completed"
        os.kill(first.db.pid or 0, signal.SIGKILL)
        slow.clear()
        await wait_until(lambda: state.worker is not first, "a new worker")
        await wait_until(lambda: run_state(engine, run_id) == "completed", "the run")
    finally:
        stop_event.set()
        await task
        await http.close()
    assert set(statuses(engine, run_id).values()) == {"passed"}
    sent = {rid for log in logs for rid in log.request_ids}
    assert_each_item_recorded_once(engine, run_id, 160, sent)
    engine.dispose()


async def test_a_lane_is_finished_with_the_scorer_fed_where_its_results_were_recorded(
    run_engine: Engine, settings: Settings, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    scorers: list[Any] = []
    finish_service = finish.finish_service

    def finish_seen(conn: Connection, **kwargs: Any) -> bool:
        scorers.append(kwargs.get("scorer"))
        return finish_service(conn, **kwargs)

    monkeypatch.setattr(finish, "finish_service", finish_seen)
    dataset = add_dataset(run_engine, settings.data_dir, make_images(30))
    app, _ = recognizer_app(lambda b: "x:1")
    add_service(run_engine, [serve(app)], max_concurrency=2)
    run_id = start_run(run_engine, settings, dataset=dataset, phase="dryrun")
    async with running_worker(run_engine, settings) as worker:
        await wait_until(lambda: run_state(run_engine, run_id) == "completed", "the run")
    assert set(statuses(run_engine, run_id).values()) == {"passed"}
    # Every result reached the lane's scorer: the service was scored without a pass
    # over its items, and the scorer is forgotten once the lane is final.
    assert scorers and scorers[-1] is not None and scorers[-1].images == 30
    assert not [key for key in recording._scorers if key[0] == worker.id]

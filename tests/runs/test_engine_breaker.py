"""The dead-service breaker in runs (SPEC §9) against real servers on 127.0.0.1, on
SQLite and PostgreSQL: a dead service pauses as `down`, a recognizer that goes away and
comes back loses no image and burns no attempt, and one that stays away is given up on."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.db import is_sqlite, utcnow
from gateway.registry.models import Service
from gateway.runs import lifecycle, service
from gateway.runs.engine import breaker
from gateway.runs.models import RunService, Worker, WorkItem
from tests.runs.builders import (
    add_dataset,
    add_service,
    answers_by_image,
    item_counts,
    make_images,
    recognizer_app,
    run_state,
    statuses,
    work_items,
)
from tests.runs.conftest import running_worker, start_run, wait_until
from tests.servers import live_server

FAILURES = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The engine tests' settings with a breaker that trips and probes quickly."""
    return settings.model_copy(
        update={"breaker_failures": FAILURES, "breaker_probe_s": 0.05, "breaker_probe_max_s": 0.2}
    )


@pytest.fixture
def unlistened_url() -> Iterator[str]:
    """A local port bound but not listening, held for the test: connections are refused
    and no other program can take the port meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def service_row(engine: Engine, run_id: int, guid: str) -> RunService:
    with Session(engine) as session:
        return session.scalars(
            select(RunService)
            .join(Service, Service.id == RunService.service_id)
            .where(RunService.run_id == run_id, Service.guid == guid)
        ).one()


def items_of(engine: Engine, run_id: int, guid: str) -> list[WorkItem]:
    run_service_id = service_row(engine, run_id, guid).id
    return [i for i in work_items(engine, run_id) if i.run_service_id == run_service_id]


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_dead_service_pauses_as_down_while_the_rest_of_the_run_completes(
    run_engine: Engine,
    settings: Settings,
    data_dir: Path,
    serve: Any,
    unlistened_url: str,
    workers: int,
) -> None:
    if workers > 1 and is_sqlite(settings.database_url):
        pytest.skip("several workers need PostgreSQL")
    images = make_images(30)
    dataset = add_dataset(run_engine, data_dir, images)
    live = add_service(run_engine, [serve(recognizer_app(lambda b: "x:1")[0])], name="live")
    dead = add_service(run_engine, [unlistened_url], name="dead", max_concurrency=2)
    run_id = start_run(run_engine, settings, dataset=dataset, phase="dryrun")

    async with contextlib.AsyncExitStack() as stack:
        for _ in range(workers):
            await stack.enter_async_context(running_worker(run_engine, settings))
        await wait_until(
            lambda: statuses(run_engine, run_id) == {live: "passed", dead: "down"},
            "the live service to pass and the dead one to be down",
        )
        # Paused: nothing of the dead service stays claimed, the rest waits unsent.
        await wait_until(
            lambda: "leased" not in item_counts(run_engine, run_id), "unsent items given back"
        )
        recorded = [i for i in items_of(run_engine, run_id, dead) if i.state == "done"]
        # It never answered, so the failures that tripped it are its own: recorded.
        assert FAILURES <= len(recorded) <= FAILURES * workers
        assert {i.outcome for i in recorded} == {"connect_error"}
        assert run_state(run_engine, run_id) == "running"
        with Session(run_engine) as session:
            progress = service.run_progress(session, run_id=run_id)
        down = next(s for s in progress.services if s.service_guid == dead)
        assert down.status == "down" and down.eta_s is None
        assert down.done == len(recorded) and down.total == 30
        reason = down.reason or ""
        assert reason.startswith(f"down: {FAILURES} requests in a row got no answer")
        assert "connect_error: cannot reach" in reason and "probes /ping" in reason
    # Stopped workers leave it down (a restarted hub probes it again).
    assert statuses(run_engine, run_id)[dead] == "down"


COUNTING_MODEL = """
import hashlib, os, time

def recognize(image):
    with open(os.environ["COUNT_LOG"], "a") as log:
        log.write(hashlib.sha256(image).hexdigest() + "\\n")
    time.sleep(0.05)
    return [("x", 1.0)]
"""


@contextlib.contextmanager
def recognizer_process(workdir: Path, port: int) -> Iterator[str]:
    """`recoghub-recognizer` as a team runs it, counting every image it receives in
    workdir/received.log; stopped with SIGTERM (it answers what it is working on)."""
    script = Path(sys.executable).with_name("recoghub-recognizer")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "sample_recognizer"]
    with subprocess.Popen(
        [*command, "--backend", "python", "--function", "counting_model:recognize"]
        + ["--port", str(port)],
        cwd=workdir,
        env={**os.environ, "COUNT_LOG": str(workdir / "received.log")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None and process.stderr is not None
            line = process.stdout.readline()
            assert "serving on http://127.0.0.1:" in line, process.stderr.read()
            yield line.split()[-1]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


class StandIn:
    """Listens on a port while the recognizer is away: reads each request's first line,
    counts it, and closes the connection without an answer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(5)
                head = b""
                with contextlib.suppress(OSError):
                    while b"\r\n" not in head and len(head) < 8192:
                        chunk = conn.recv(1024)
                        if not chunk:
                            break
                        head += chunk
                self.seen.append(head.split(b"\r\n", 1)[0].decode("latin-1"))

    def count(self, method: str, path: str) -> int:
        return sum(1 for line in list(self.seen) if line.startswith(f"{method} {path} "))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=10)


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def live_workers(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Worker)) or 0)


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_recognizer_that_goes_away_and_comes_back_loses_nothing_and_burns_nothing(
    run_engine: Engine, settings: Settings, data_dir: Path, tmp_path: Path, workers: int
) -> None:
    if workers > 1 and is_sqlite(settings.database_url):
        pytest.skip("several workers need PostgreSQL")
    workdir = tmp_path / "team"
    workdir.mkdir()
    (workdir / "counting_model.py").write_text(COUNTING_MODEL)
    received = workdir / "received.log"
    images = make_images(40)
    dataset = add_dataset(run_engine, data_dir, images)

    with contextlib.ExitStack() as stack:
        url = stack.enter_context(recognizer_process(workdir, 0))
        port = int(url.rsplit(":", 1)[1])
        team = add_service(run_engine, [url], name="flaky", max_concurrency=2)
        async with contextlib.AsyncExitStack() as hub:
            running = [
                await hub.enter_async_context(running_worker(run_engine, settings))
                for _ in range(workers)
            ]
            # Every worker is live before the run starts, so each takes its share of the
            # service's slots from the first claim (a late one could find the run done).
            await wait_until(lambda: live_workers(run_engine) == workers, "the workers")
            run_id = start_run(
                run_engine, settings, dataset=dataset, phase="dryrun", max_attempts=3
            )
            await wait_until(
                lambda: len(lines(received)) >= 10 and all(w.recorded for w in running),
                "10 images answered, and every worker sending",
            )
            stack.close()  # the recognizer goes away mid-run
            assert len(lines(received)) < len(images)
            await wait_until(
                lambda: statuses(run_engine, run_id)[team] == "down", "the service to be down"
            )
            # Every worker learns of the pause at its next survey (within a manage tick)
            # and stops the lane; from then on it only probes /ping: no image is sent.
            await wait_until(
                lambda: (
                    not any(
                        lane.target.service_guid == team
                        for w in running
                        for lane in w.lanes.open.values()
                    )
                ),
                "every worker to stop sending",
            )
            stand_in = StandIn(port)
            try:
                await wait_until(lambda: stand_in.count("GET", "/ping") >= 3, "3 probes")
                assert stand_in.count("POST", "/recognize") == 0
                assert statuses(run_engine, run_id)[team] == "down"
            finally:
                stand_in.close()
            with recognizer_process(workdir, port):  # back on the same port
                await wait_until(
                    lambda: run_state(run_engine, run_id) == "completed", "the run to complete"
                )

    assert statuses(run_engine, run_id) == {team: "passed"}
    items = items_of(run_engine, run_id, team)
    assert len(items) == len(images)
    assert all(i.outcome == "ok" and i.attempts == 1 for i in items)
    # Every image reached the recognizer exactly once: none lost, none sent twice.
    assert sorted(lines(received)) == sorted(image.digest for image in images)


async def test_a_service_down_past_the_give_up_time_has_its_rest_recorded_unreachable(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    settings = settings.model_copy(update={"breaker_give_up_s": 1.0})
    images = make_images(30)
    dataset = add_dataset(run_engine, data_dir, images)
    live = add_service(run_engine, [serve(recognizer_app(lambda b: "x:1")[0])], name="live")
    right = answers_by_image(images, {image.key: f"{image.truth[0]}:1" for image in images})
    app, seen = recognizer_app(right, delay_s=0.01)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(live_server(app))
        gone = add_service(run_engine, [server.url], name="gone", max_concurrency=2)
        run_id = start_run(run_engine, settings, dataset=dataset, phase="evaluation")
        async with running_worker(run_engine, settings):
            await wait_until(lambda: seen.requests >= 8, "8 images answered")
            stack.close()  # it goes away for good
            await wait_until(
                lambda: run_state(run_engine, run_id) == "completed", "the run to complete"
            )

    assert statuses(run_engine, run_id) == {live: "passed", gone: "failed"}
    reason = service_row(run_engine, run_id, gone).reason or ""
    assert reason.startswith("unreachable: down for more than 1 s, ")
    assert "last error: " in reason and "/ping: cannot reach" in reason
    items = items_of(run_engine, run_id, gone)
    by_outcome: dict[str, list[WorkItem]] = {}
    for item in items:
        by_outcome.setdefault(str(item.outcome), []).append(item)
    # What it received it answered; the rest was never sent (the failures that tripped
    # the breaker were given back, then given up on with the others).
    assert set(by_outcome) == {"ok", "unreachable"}
    assert len(by_outcome["ok"]) == seen.requests
    unreachable = by_outcome["unreachable"]
    assert len(unreachable) == len(images) - seen.requests
    assert f"{len(unreachable)} images recorded unreachable" in reason
    for item in unreachable:
        assert item.attempts == 0 and item.request_id is None and not item.attempt_log
        assert item.state == "done" and item.finished_at is not None
    with Session(run_engine) as session:
        board = {row["service_guid"]: row for row in service.leaderboard(session, run_id=run_id)}
    assert board[gone]["outcomes"]["unreachable"] == len(unreachable)
    assert board[gone]["images"] == len(images)
    # It answered every image it received right; the unreachable ones count as wrong.
    assert board[gone]["top1"] == pytest.approx(seen.requests / len(images))


async def test_a_down_service_left_by_a_dead_prober_is_probed_and_resumed_by_another(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    images = make_images(12)
    dataset = add_dataset(run_engine, data_dir, images)
    team = add_service(run_engine, [serve(recognizer_app(lambda b: "x:1")[0])], name="back")
    run_id = start_run(run_engine, settings, dataset=dataset, phase="dryrun")
    run_service_id = service_row(run_engine, run_id, team).id
    # A worker paused the service, took the probe lease and died: its lease runs out.
    now = utcnow()
    with run_engine.begin() as conn:
        assert breaker.mark_down(conn, run_service_id=run_service_id, reason="down: test")
        assert lifecycle.slots.lease_probes(
            conn,
            worker_id="dead-worker",
            run_service_ids=[run_service_id],
            now=now,
            expires=now + timedelta(seconds=1),
        )
        # While that lease holds, nobody else probes.
        assert not lifecycle.slots.lease_probes(
            conn,
            worker_id="other",
            run_service_ids=[run_service_id],
            now=now,
            expires=now + timedelta(seconds=1),
        )

    async with running_worker(run_engine, settings):
        await wait_until(lambda: run_state(run_engine, run_id) == "completed", "the run")

    assert statuses(run_engine, run_id) == {team: "passed"}
    assert service_row(run_engine, run_id, team).reason is None
    assert all(i.outcome == "ok" for i in items_of(run_engine, run_id, team))


def test_the_breakers_database_steps_change_only_the_status_they_expect(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    dataset = add_dataset(run_engine, data_dir, make_images(4))
    team = add_service(run_engine, ["http://127.0.0.1:9"], name="steps")
    run_id = start_run(run_engine, settings, dataset=dataset, phase="dryrun")
    rs = service_row(run_engine, run_id, team).id
    now = utcnow()
    later = now + timedelta(seconds=30)
    with run_engine.begin() as conn:
        # Giving up on, or resuming, a service that is not down changes nothing.
        assert (
            breaker.give_up(
                conn,
                run_service_id=rs,
                worker_id="w",
                slot_id=0,
                give_up_s=1,
                last_error="x",
                now=now,
            )
            == 0
        )
        breaker.resume(conn, run_service_id=rs, worker_id="w", slot_id=0)
    assert statuses(run_engine, run_id)[team] == "pending"
    assert item_counts(run_engine, run_id) == {"pending": 4}

    with run_engine.begin() as conn:
        assert breaker.mark_down(conn, run_service_id=rs, reason="down: it went away")
        assert not breaker.mark_down(conn, run_service_id=rs, reason="down: again")
        probe = lifecycle.slots.lease_probes(
            conn, worker_id="w", run_service_ids=[rs], now=now, expires=later
        )
    assert list(probe) == [rs]
    row = service_row(run_engine, run_id, team)
    assert (row.status, row.reason) == ("down", "down: it went away")

    with run_engine.begin() as conn:
        breaker.resume(conn, run_service_id=rs, worker_id="w", slot_id=probe[rs])
        # The probe lease was handed back: another worker may take it at once.
        assert lifecycle.slots.lease_probes(
            conn, worker_id="v", run_service_ids=[rs], now=now, expires=later
        ) == {rs: probe[rs]}
    row = service_row(run_engine, run_id, team)
    assert (row.status, row.reason) == ("ongoing", None)
    assert item_counts(run_engine, run_id) == {"pending": 4}

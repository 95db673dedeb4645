"""`recoghub worker --listen` (SPEC §10): every dispatching process accepts dial-out
recognizers, tells them where the others are, and sends only through its own."""

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.app import create_app
from gateway.db import make_engine
from gateway.runs.models import Worker
from tests.builders import LOOPBACK_ALLOWED, hub_settings, register_team
from tests.dialout.support import REPO, DialoutProcess
from tests.runs.api_builders import poll_until, seed_dataset, start_run, wait_for
from tests.runs.builders import work_items
from tests.servers import live_server

LABELS = {f"img-{n:02d}": ("cat", "dog")[n % 2] for n in range(16)}


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def spawn_listening_worker(
    database_url: str, data_dir: Path, log: Path, *, listen: bool = True
) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "RECOGHUB_DATABASE_URL": database_url,
        "RECOGHUB_DATA_DIR": str(data_dir),
        "RECOGHUB_ENDPOINT_ALLOW": LOOPBACK_ALLOWED,
        "RECOGHUB_LEASE_S": "3",
        "RECOGHUB_HEARTBEAT_S": "0.25",
        "RECOGHUB_RESULT_FLUSH_S": "0.05",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.runs.worker_process",
                *(["--listen", "127.0.0.1:0"] if listen else []),
            ],
            cwd=REPO,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def public_url(log: Path) -> str | None:
    found = re.search(r"accepting dial-out recognizers at (\S+)", log.read_text(errors="replace"))
    return found.group(1) if found else None


def test_one_recognizer_serves_two_listening_workers(
    postgres: Any, tmp_path: Path, workers: list[subprocess.Popen[bytes]]
) -> None:
    database_url = postgres.new()
    data_dir = tmp_path / "data"
    dataset_id = seed_dataset(database_url, data_dir, LABELS)
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    workers.extend(spawn_listening_worker(database_url, data_dir, log) for log in logs)
    urls = [poll_until(lambda log=log: public_url(log), f"the URL in {log.name}") for log in logs]
    engine = make_engine(database_url)
    settings = hub_settings(database_url, data_dir, embedded_worker=False)
    try:

        def registered() -> set[str]:
            with engine.connect() as conn:
                return {url for (url,) in conn.execute(select(Worker.public_url)) if url}

        poll_until(lambda: registered() == set(urls), "both workers registered with their URL")
        with live_server(create_app(settings)) as hub, httpx.Client(base_url=hub.url) as c:
            team = register_team(c, [], max_concurrency=4)
            # Given one worker's URL, the recognizer learns of the other and connects there.
            recognizer = DialoutProcess(urls[0], team, tmp_path / "recognizer.log")
            try:
                recognizer.wait_connected(times=2)
                run = start_run(c, dataset_id, "dryrun", services=[team.service_guid])
                done = wait_for(c, run["id"], {"completed"}, timeout=60)
            finally:
                recognizer.stop()
        (service,) = done["services"]
        assert service["outcomes"]["ok"] == len(LABELS) == service["done"]
        items = work_items(engine, run["id"])
    finally:
        engine.dispose()
    assert len(items) == len(LABELS)
    assert all(item.state == "done" and item.outcome == "ok" for item in items)
    assert all(len(item.attempt_log) == 1 for item in items)
    for url in urls:
        assert f"{url.replace('http', 'ws')}/api/v1/connect" in recognizer.log()
    for proc, log in zip(workers, logs, strict=True):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()


def test_a_worker_without_a_connection_leaves_a_dial_out_service_to_the_others(
    postgres: Any, tmp_path: Path, workers: list[subprocess.Popen[bytes]]
) -> None:
    """Worker B accepts no connections: it takes none of the service's slots, so nothing
    of the run fails for want of a connection there; worker A sends it all."""
    database_url = postgres.new()
    data_dir = tmp_path / "data"
    dataset_id = seed_dataset(database_url, data_dir, LABELS)
    listening, deaf = tmp_path / "worker-a.log", tmp_path / "worker-b.log"
    workers.append(spawn_listening_worker(database_url, data_dir, listening))
    workers.append(spawn_listening_worker(database_url, data_dir, deaf, listen=False))
    url = poll_until(lambda: public_url(listening), "worker A's URL")
    engine = make_engine(database_url)
    settings = hub_settings(database_url, data_dir, embedded_worker=False)
    try:

        def live_workers() -> int:
            with engine.connect() as conn:
                return len(conn.execute(select(Worker.id)).all())

        poll_until(lambda: live_workers() == 2, "both workers registered")
        with live_server(create_app(settings)) as hub, httpx.Client(base_url=hub.url) as c:
            team = register_team(c, [], max_concurrency=4)
            recognizer = DialoutProcess(url, team, tmp_path / "recognizer.log")
            try:
                recognizer.wait_connected()
                run = start_run(c, dataset_id, "dryrun", services=[team.service_guid])
                done = wait_for(c, run["id"], {"completed"}, timeout=60)
            finally:
                recognizer.stop()
        items = work_items(engine, run["id"])
    finally:
        engine.dispose()
    (service,) = done["services"]
    assert service["status"] == "passed", service
    assert all(item.outcome == "ok" and len(item.attempt_log) == 1 for item in items)
    assert all(entry["instance"].startswith("dialout:") for i in items for entry in i.attempt_log)

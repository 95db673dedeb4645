"""`recoghub serve`'s processes (gateway.worker_child): the API process runs no worker;
a child it starts dispatches, holds the SQLite worker lock and takes the dial-out
connections made to serve's port; the child never outlives serve, and serve starts it
again when it dies."""

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from gateway.db import make_engine
from gateway.migrate import upgrade
from gateway.runs.engine.process import sqlite_lock_path, worker_lock
from gateway.runs.models import Worker
from tests.builders import admin_headers, bearer, png_bytes, register_team
from tests.dialout.support import DialoutProcess, dialout_recognizer
from tests.runs.api_builders import CAT_DOG, poll_until, recognizers, seed_dataset, start_run
from tests.runs.api_builders import wait_for as wait_for_state
from tests.runs.test_hub_restart import LABELS, HubProcess, free_port, scores


@pytest.fixture
def hubs() -> Iterator[list[HubProcess]]:
    started: list[HubProcess] = []
    yield started
    for hub in started:
        hub.close()


def migrated(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def worker_pids(database_url: str) -> set[int]:
    """The processes registered as workers (a stopped worker removes its row)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return {int(pid) for pid in conn.execute(select(Worker.pid)).scalars()}
    finally:
        engine.dispose()


def parent_of(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    if fields.get("State", "").startswith("Z"):
        return None  # dead, not yet reaped
    return int(fields["PPid"])


def alive(pid: int) -> bool:
    return parent_of(pid) is not None


def child_worker(database_url: str, hub: HubProcess) -> int:
    """The pid of serve's worker, once it has registered: a child of serve."""
    deadline = time.monotonic() + 120  # only a bound for a hung test
    while not (pids := worker_pids(database_url)):
        assert time.monotonic() < deadline, f"no worker registered; serve's log:\n{hub_log(hub)}"
        time.sleep(0.05)
    assert len(pids) == 1, pids
    (pid,) = pids
    assert pid != hub.process.pid
    assert parent_of(pid) == hub.process.pid
    return pid


def hub_log(hub: HubProcess) -> str:
    return Path(hub._log.name).read_text(errors="replace")[-4000:]


def test_a_run_is_sent_by_serves_child_to_http_and_connected_teams(
    database_url: str, tmp_path: Path, hubs: list[HubProcess]
) -> None:
    migrated(database_url)
    data_dir = tmp_path / "data"
    dataset_id = seed_dataset(database_url, data_dir, LABELS)
    with recognizers(CAT_DOG) as (http_recognizer,):
        hubs.append(HubProcess(database_url, data_dir, free_port(), tmp_path / "hub.log"))
        hub = hubs[-1]
        worker = child_worker(database_url, hub)
        lock = sqlite_lock_path(database_url)
        if lock is not None:  # the child, not the API process, holds the SQLite lock
            assert lock.read_text().strip() == str(worker)
        with httpx.Client(base_url=hub.url, timeout=10) as client:
            over_http = register_team(client, [http_recognizer.url], max_concurrency=2)
            connected = register_team(client, [], max_concurrency=2)
        # The recognizer connects to serve's port; the child holds its connection.
        recognizer = DialoutProcess(
            hub.url, connected, tmp_path / "recognizer.log", "--answer", CAT_DOG
        )
        try:
            recognizer.wait_connected()
            teams = [over_http.service_guid, connected.service_guid]
            with httpx.Client(base_url=hub.url, timeout=10) as client:
                run = start_run(client, dataset_id, "evaluation", services=teams)
                wait_for_state(client, run["id"], {"completed"}, timeout=120)
                board = scores(client, run["id"])
                # The child's attempts are in serve's /metrics, once each.
                exposition = client.get("/metrics").text
        finally:
            recognizer.stop()
    for guid in teams:
        assert {k: v for k, v in board[guid]["outcomes"].items() if v} == {"ok": len(LABELS)}
    assert worker_pids(database_url) == {worker}
    ok = 'recoghub_recognizer_attempts_total{outcome="ok"} '
    (line,) = [x for x in exposition.splitlines() if x.startswith(ok)]
    assert float(line.removeprefix(ok)) == 2 * len(LABELS)
    assert exposition.count("# TYPE recoghub_recognizer_attempts_total counter") == 1


def test_serve_killed_leaves_no_worker_behind(
    sqlite_url: str, tmp_path: Path, hubs: list[HubProcess]
) -> None:
    migrated(sqlite_url)
    hubs.append(HubProcess(sqlite_url, tmp_path / "data", free_port(), tmp_path / "hub.log"))
    worker = child_worker(sqlite_url, hubs[-1])
    hubs[-1].signal(signal.SIGKILL)
    poll_until(lambda: not alive(worker), "the worker to stop with serve", 60)
    # Its lock is free: another hub on the same database dispatches.
    with worker_lock(sqlite_url):
        pass


def test_serve_starts_a_worker_that_died_again(
    sqlite_url: str, tmp_path: Path, hubs: list[HubProcess]
) -> None:
    migrated(sqlite_url)
    log = tmp_path / "hub.log"
    # Its pause before the new start (5 s) shortened: the start is the point, not the wait.
    pause = "import gateway.worker_child as child; child.RESTART_PAUSE_S = 0.5"
    hubs.append(HubProcess(sqlite_url, tmp_path / "data", free_port(), log, prelude=pause))
    first = child_worker(sqlite_url, hubs[-1])
    os.kill(first, signal.SIGKILL)
    serve = hubs[-1].process.pid

    def new_child() -> set[int]:
        return {p for p in worker_pids(sqlite_url) - {first} if parent_of(p) == serve}

    assert poll_until(new_child, "a new worker", 60)
    assert not alive(first)
    text = log.read_text(errors="replace")
    assert f"the dispatch worker (pid {first}) exited" in text, text
    assert "starting it again" in text


def test_a_recognizer_connecting_while_no_worker_runs_is_told_so(
    sqlite_url: str, tmp_path: Path, hubs: list[HubProcess]
) -> None:
    migrated(sqlite_url)
    log = tmp_path / "hub.log"
    port = free_port()
    # Another process dispatches this SQLite database: serve's worker is refused.
    with worker_lock(sqlite_url):
        hubs.append(HubProcess(sqlite_url, tmp_path / "data", port, log))
        poll_until(lambda: "serves the API only" in log.read_text(errors="replace"), "refusal")
        answer = ask_to_connect(port)
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 503 Service Unavailable", answer
    assert b"content-type: application/json" in rest
    assert b'"code": "worker_unavailable"' in rest
    # The API still answers.
    r = httpx.get(f"http://127.0.0.1:{port}/api/v1/runs", headers=admin_headers(), timeout=10)
    assert r.status_code == 200


def ask_to_connect(port: int, key: str | None = None) -> bytes:
    """A WebSocket upgrade of /api/v1/connect; the whole answer, once the hub closes."""
    head = (
        "GET /api/v1/connect HTTP/1.1\r\nHost: hub\r\nConnection: Upgrade\r\n"
        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        + (f"Authorization: Bearer {key}\r\n" if key else "")
        + "\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_serve_stopped_stops_its_worker_first(
    sqlite_url: str, tmp_path: Path, hubs: list[HubProcess], signum: int
) -> None:
    migrated(sqlite_url)
    log = tmp_path / "hub.log"
    hubs.append(HubProcess(sqlite_url, tmp_path / "data", free_port(), log))
    worker = child_worker(sqlite_url, hubs[-1])
    hubs[-1].signal(signum)
    assert not alive(worker)
    assert worker_pids(sqlite_url) == set()  # it unregistered: a clean stop
    text = log.read_text(errors="replace")
    assert text.index("stopped after recording") < text.index("Shutting down")


def test_relay_check_and_show_reach_a_recognizer_connected_to_serves_worker(
    sqlite_url: str, tmp_path: Path, hubs: list[HubProcess]
) -> None:
    migrated(sqlite_url)
    hubs.append(HubProcess(sqlite_url, tmp_path / "data", free_port(), tmp_path / "hub.log"))
    hub = hubs[-1]
    child_worker(sqlite_url, hub)
    # The child checks the key before it upgrades, as serve did (SPEC §10).
    refused = ask_to_connect(int(hub.url.rpartition(":")[2]), key="ra_not_a_key")
    assert refused.startswith(b"HTTP/1.1 401 "), refused
    assert b'"code":"unauthorized"' in refused.replace(b" ", b""), refused
    with httpx.Client(base_url=hub.url, timeout=30) as c:
        team = register_team(c, [], name="firewalled")
        url = f"/api/v1/services/{team.service_guid}"
        with dialout_recognizer(hub.url, team, tmp_path, "--answer", "owl:0.7;cat:0.2"):
            # The worker child holds the connection; the API process relays through it.
            shown = poll_until(
                lambda: c.get(url, headers=bearer(team.api_key)).json()["connected"],
                "the connection to show",
            )
            assert len(shown) == 1 and shown[0].startswith("dialout:")
            r = c.post(
                f"{url}/recognize",
                content=png_bytes(),
                headers={**bearer(team.api_key), "Content-Type": "image/png"},
            )
            assert r.status_code == 200, r.text
            assert [t["tag"] for t in r.json()["tags"]] == ["owl", "cat"]
            r = c.post(f"{url}/check", headers=bearer(team.api_key))
            assert r.status_code == 200, r.text
            (instance,) = r.json()["instances"]
            assert instance["connected"] is True and instance["reachable"] is True
            assert instance["format_ok"] is True and instance["ping_outcome"] == "ok"
        poll_until(
            lambda: not c.get(url, headers=bearer(team.api_key)).json()["connected"],
            "the connection to go",
        )
        r = c.post(f"{url}/recognize", content=png_bytes(), headers=bearer(team.api_key))
        assert r.status_code == 409 and r.json()["code"] == "no_instances"

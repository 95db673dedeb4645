"""The hub's own faults never count (README, "The hub's own faults"): `recoghub serve`
killed (`kill -9`) or stopped (SIGTERM) in the middle of an evaluation and started
again costs no team a point, whether it answers over HTTP or connected out (its
recognizer is in its reconnect back-off when the hub comes back, and reconnects only
once the new worker dispatches: the worker's dial-out grace is what keeps its items
from failing meanwhile)."""

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.db import make_engine
from gateway.migrate import upgrade
from tests.builders import ADMIN_TOKEN, LOOPBACK_ALLOWED, Team, admin_headers, register_team
from tests.dialout.support import REPO, DialoutProcess
from tests.runs.api_builders import CAT_DOG, poll_until, recognizers, seed_dataset, start_run
from tests.runs.api_builders import wait_for as wait_for_state

# Half cats, a quarter dogs, a quarter birds: `cat:0.9;dog:0.5` scores top-1 1/2, top-5 3/4.
LABELS = {f"img-{n:03d}": ("cat", "dog", "cat", "bird")[n % 4] for n in range(120)}
SCORED = ("images", "top1", "top5", "coverage_at_95", "coverage_at_99", "micro_ap", "outcomes")


class HubProcess:
    """`recoghub serve` on a fixed port, as an operator runs it; its log in `log_path`.
    `prelude` is Python run in serve's process first (a test's shorter pause)."""

    def __init__(
        self, database_url: str, data_dir: Path, port: int, log_path: Path, prelude: str = ""
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._log = log_path.open("ab")
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RECOGHUB_")},
            "PYTHONPATH": str(REPO),
            "RECOGHUB_DATABASE_URL": database_url,
            "RECOGHUB_DATA_DIR": str(data_dir),
            "RECOGHUB_ADMIN_TOKEN": ADMIN_TOKEN,
            "RECOGHUB_ENDPOINT_ALLOW": LOOPBACK_ALLOWED,
            "RECOGHUB_TIMING_BOUND_MS": "0",
            "RECOGHUB_LEASE_S": "3",
            "RECOGHUB_HEARTBEAT_S": "0.5",
            "RECOGHUB_RESULT_FLUSH_S": "0.05",
            "RECOGHUB_RETRY_BACKOFF_S": "0.01",
            "RECOGHUB_RETRY_BACKOFF_MAX_S": "0.05",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", f"{prelude}\nfrom gateway.cli.main import main; main()"]
            + ["serve", "--port", str(port)],
            cwd=REPO,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        poll_until(self._answers, f"the hub at {self.url}", timeout=60)

    def _answers(self) -> bool:
        assert self.process.poll() is None, f"the hub exited with {self.process.returncode}"
        try:
            return httpx.get(f"{self.url}/api/v1/ping", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)
        self.process.wait(timeout=60)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def hubs() -> Iterator[list[HubProcess]]:
    started: list[HubProcess] = []
    yield started
    for hub in started:
        hub.close()


def scores(client: httpx.Client, run_id: int) -> dict[str, dict[str, Any]]:
    r = client.get(f"/api/v1/runs/{run_id}/leaderboard", headers=admin_headers())
    assert r.status_code == 200, r.text
    return {row["service_guid"]: {k: row[k] for k in SCORED} for row in r.json()}


def done_of(client: httpx.Client, run_id: int) -> dict[str, int]:
    run = client.get(f"/api/v1/runs/{run_id}", headers=admin_headers()).json()
    return {s["service_guid"]: s["done"] for s in run["services"]}


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_hub_stopped_mid_run_costs_no_team_a_point(
    database_url: str, tmp_path: Path, hubs: list[HubProcess], signum: int
) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    data_dir = tmp_path / "data"
    dataset_id = seed_dataset(database_url, data_dir, LABELS)
    port = free_port()
    log = tmp_path / "hub.log"
    with recognizers(CAT_DOG, delay_ms=40) as (http_recognizer,):
        hubs.append(HubProcess(database_url, data_dir, port, log))
        with httpx.Client(base_url=hubs[-1].url, timeout=10) as client:
            over_http = register_team(client, [http_recognizer.url], max_concurrency=2)
            connected: Team = register_team(client, [], max_concurrency=2)
        recognizer = DialoutProcess(
            hubs[-1].url, connected, tmp_path / "recognizer.log", "--answer", CAT_DOG,
            "--delay-ms", "40",
        )  # fmt: skip
        teams = [over_http.service_guid, connected.service_guid]
        try:
            recognizer.wait_connected()
            with httpx.Client(base_url=hubs[-1].url, timeout=10) as client:
                calm = start_run(client, dataset_id, "evaluation", services=teams)
                wait_for_state(client, calm["id"], {"completed"}, timeout=120)
                undisturbed = scores(client, calm["id"])
                run = start_run(client, dataset_id, "evaluation", services=teams)
                poll_until(
                    lambda: min(done_of(client, run["id"]).values()) >= 20,
                    "every team under way",
                )
            hubs[-1].signal(signum)
            # Held in its back-off until the new hub's worker runs: it comes back late
            # on purpose, and at once then (its back-off, 1 s doubling to 30 s, would
            # otherwise leave the run waiting for it for up to half a minute).
            recognizer.pause()
            stopped_at = done_of_db(database_url, run["id"])
            assert min(stopped_at.values()) < len(LABELS)
            hubs.append(HubProcess(database_url, data_dir, port, log))
            with httpx.Client(base_url=hubs[-1].url, timeout=10) as client:
                # The new worker sends (the HTTP team's items move on, if any were left)
                # while the other team's recognizer is still away: its items wait out
                # the dial-out grace.
                http = over_http.service_guid
                moved_on = min(stopped_at[http] + 1, len(LABELS))
                poll_until(
                    lambda: done_of(client, run["id"])[http] >= moved_on,
                    "the new hub's worker to send",
                    60,
                )
                recognizer.resume()
                wait_for_state(client, run["id"], {"completed"}, timeout=180)
                disturbed = scores(client, run["id"])
        finally:
            recognizer.stop()
    hub_log = log.read_text(errors="replace")
    assert recognizer.connections() >= 2, recognizer.log()  # it reconnected after the stop
    ok_only = {"ok": len(LABELS)}
    for guid in teams:
        outcomes = {k: v for k, v in disturbed[guid]["outcomes"].items() if v}
        assert outcomes == ok_only, (guid, disturbed[guid], hub_log[-3000:])
        assert disturbed[guid] == undisturbed[guid]
    assert undisturbed[over_http.service_guid]["top1"] == 0.5
    assert undisturbed[over_http.service_guid]["top5"] == 0.75


def done_of_db(database_url: str, run_id: int) -> dict[str, int]:
    """Items recorded per service (by guid), read from the database while no hub runs."""
    from sqlalchemy import func, select

    from gateway.registry.models import Service
    from gateway.runs.models import RunService, WorkItem

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Service.guid, func.count())
                .select_from(WorkItem)
                .join(RunService, RunService.id == WorkItem.run_service_id)
                .join(Service, Service.id == RunService.service_id)
                .where(WorkItem.run_id == run_id, WorkItem.state == "done")
                .group_by(Service.guid)
            ).all()
        return {str(guid): int(n) for guid, n in rows}
    finally:
        engine.dispose()

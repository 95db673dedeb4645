"""`--watch` outlives a hub restart (issue 20): a real `recoghub serve` killed with -9 and
started again on the same port while both CLIs watch one dry run; they say the hub is
away, wait for it, and carry on to the run's end."""

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.db import make_engine
from gateway.migrate import upgrade
from tests.builders import ADMIN_TOKEN, LOOPBACK_ALLOWED, admin_headers, register_team
from tests.cli.test_hub_commands import ROOT, STARTED, WAIT_S, Stderr, environment
from tests.runs.api_builders import LABELS, seed_dataset
from tests.runs.api_builders import wait_for as wait_for_run
from tests.runs.builders import recognizer_app
from tests.servers import live_server

RECOGHUB = [sys.executable, "-c", "from gateway.cli.main import main; main()"]
TEAM_CLI = [sys.executable, "-c", "from cmdline_tool.main import main; main()"]
AWAY = re.compile(r"the hub at \S+ is away")
BACK = re.compile(r"the hub is back after \d+ s; watching again")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_both_clis_watch_a_run_through_a_killed_and_restarted_hub(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = f"sqlite:///{tmp_path / 'hub.db'}"
    hub_env = environment(
        tmp_path,
        PYTHONPATH=str(ROOT),
        RECOGHUB_DATABASE_URL=database,
        RECOGHUB_DATA_DIR=str(tmp_path / "data"),
        RECOGHUB_ADMIN_TOKEN=ADMIN_TOKEN,
        RECOGHUB_ENDPOINT_ALLOW=LOOPBACK_ALLOWED,
        RECOGHUB_LEASE_S="1.5",
        RECOGHUB_HEARTBEAT_S="0.25",
    )

    def serve() -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [*RECOGHUB, "serve", "--port", str(port)],
            cwd=ROOT,
            env=hub_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        Stderr(proc).wait_for(STARTED)
        return proc

    def watcher(*argv: str, **env: str) -> tuple[subprocess.Popen[str], Stderr]:
        proc = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=environment(tmp_path, PYTHONPATH=str(ROOT), COLUMNS="120", **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc, Stderr(proc)

    gate = threading.Event()  # the recognizer holds its answers until the hub is back
    app, _ = recognizer_app(lambda image: "cat:0.9;", gate=gate)
    engine = make_engine(database)
    upgrade(engine)
    engine.dispose()
    pets = seed_dataset(database, tmp_path / "data", LABELS, name="pets")
    first = serve()
    with (
        live_server(app) as recognizer,
        httpx.Client(base_url=url, headers=admin_headers(), timeout=30) as client,
    ):
        team = register_team(client, [recognizer.url], name="alpha")
        opened = client.patch(f"/api/v1/datasets/{pets}", json={"open_to_teams": True})
        assert opened.status_code == 200, opened.text
        team_cli, team_err = watcher(
            *TEAM_CLI,
            "dryrun",
            "--dataset",
            "pets",
            "--watch",
            RECOGHUB_HUB=url,
            RECOGHUB_API_KEY=team.api_key,
        )
        wait = httpx.Client(base_url=url, headers=admin_headers(), timeout=30)
        with wait:
            runs = _eventually(lambda: wait.get("/api/v1/runs").json())
            run_id = runs[0]["id"]
            wait_for_run(wait, run_id, {"running"})
        organizer, organizer_err = watcher(
            *RECOGHUB,
            "run",
            "watch",
            str(run_id),
            "--interval",
            "0.2",
            "--hub",
            url,
            RECOGHUB_ADMIN_TOKEN=ADMIN_TOKEN,
        )

        first.send_signal(signal.SIGKILL)  # kill -9 mid-run: no clean-up at all
        first.wait(WAIT_S)
        organizer_err.wait_for(AWAY)
        team_err.wait_for(AWAY)
        serve()
        gate.set()
        organizer_err.wait_for(BACK)
        team_err.wait_for(BACK)
        organizer.wait(WAIT_S)
        team_cli.wait(WAIT_S)
        assert organizer.stdout is not None and team_cli.stdout is not None
        organizer_out, team_out = organizer.stdout.read(), team_cli.stdout.read()
        done = client.get(f"/api/v1/runs/{run_id}").json()

    assert done["state"] == "completed", done
    assert organizer.returncode == 0, organizer_out + organizer_err.rest()
    assert team_cli.returncode == 0, team_out + team_err.rest()
    assert "completed" in organizer_out
    assert f"dry run {run_id} passed" in team_out
    for err in (organizer_err.rest(), team_err.rest()):
        assert "waiting for the hub to come back" in " ".join(err.split()), err
        assert "Traceback" not in err


def _eventually(read: Callable[[], list[dict[str, object]]]) -> list[dict[str, object]]:
    """`read()` once it gives a non-empty list (bounded: WAIT_S of tries)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if found := read():
            return found
        time.sleep(0.05)
    raise AssertionError("no run appeared")

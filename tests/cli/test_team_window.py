"""`recoghub-cli runs|status|leaderboard` show a run's evaluation window in the words of
the organizer's CLI: a queued run's start, a run's deadline, and a run stopped at it."""

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from gateway.cli.run_list import wire
from tests.builders import admin_headers, register_team
from tests.cli.test_team_view import as_team
from tests.runs.api_builders import LABELS, reach_deadline, seed_dataset, wait_for_run
from tests.runs.builders import recognizer_app
from tests.servers import LiveServer, live_server


def test_a_team_sees_a_queued_runs_start_and_a_run_stopped_at_its_deadline(
    sqlite_hub: LiveServer, sqlite_url: str, tmp_path: Path
) -> None:
    pets = seed_dataset(sqlite_url, tmp_path / "data", LABELS)
    gate = threading.Event()  # nothing is answered before the deadline
    app, log = recognizer_app(lambda body: "cat:0.9", gate=gate)
    try:
        with (
            live_server(app) as rec,
            httpx.Client(base_url=sqlite_hub.url, headers=admin_headers()) as c,
        ):
            team = register_team(c, [rec.url], name="alpha")
            evaluation = {"dataset": pets, "phase": "evaluation", "services": [team.service_guid]}
            start_at = wire(datetime.now(UTC) + timedelta(hours=1))
            r = c.post("/api/v1/runs", json={**evaluation, "start_at": start_at})
            assert r.status_code == 201, r.text
            queued = r.json()
            deadline = wire(datetime.now(UTC) + timedelta(hours=1))
            r = c.post("/api/v1/runs", json={**evaluation, "deadline": deadline, "timeout_s": 300})
            assert r.status_code == 201, r.text
            stopped = r.json()

            code, out = as_team(sqlite_hub, team, "status", str(queued["id"]))
            assert code == 0 and f"starts {queued['start_at']}" in out, out
            assert "stopped at its deadline" not in out

            wait_for_run(c, stopped["id"], "running")
            held = time.monotonic() + 30
            while log.in_flight == 0:  # the recognizer holds requests: the run is under way
                assert time.monotonic() < held, "no request reached the recognizer"
                time.sleep(0.05)
            code, out = as_team(sqlite_hub, team, "status", str(stopped["id"]))
            assert code == 0 and f"deadline {stopped['deadline']}" in out, out
            assert "stopped at its deadline" not in out

            reach_deadline(sqlite_url, stopped["id"])
            wait_for_run(c, stopped["id"], "completed")
            code, out = as_team(sqlite_hub, team, "status", str(stopped["id"]))
            assert code == 0, out
            assert "stopped at its deadline: images not answered by then are missed" in out

            code, out = as_team(sqlite_hub, team, "runs")
            assert code == 0, out
            assert f"run {queued['id']}: starts {queued['start_at']}" in out, out
            # (the test moved the deadline to the moment it stopped the run)
            stopped_line = next(
                line for line in out.splitlines() if line.startswith(f"run {stopped['id']}:")
            )
            assert stopped_line.endswith(
                "; stopped at its deadline: images not answered by then are missed"
            )

            c.post(f"/api/v1/runs/{stopped['id']}/publish")
            code, out = as_team(sqlite_hub, team, "leaderboard", str(stopped["id"]))
            assert code == 0 and f"run {stopped['id']} stopped at its deadline" in out, out
            gate.set()  # the recognizer's held handlers end before it stops
    finally:
        gate.set()

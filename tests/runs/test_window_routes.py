"""The evaluation window through the API (SPEC §3): `start_at` and `deadline` on
`POST /api/v1/runs`, checked with clear 422s, shown on the run, and a run stopped by its
deadline says so."""

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.builders import admin_headers, register_team
from tests.runs.api_builders import LABELS, seed_dataset, start_run, wait_for
from tests.runs.builders import recognizer_app
from tests.servers import LiveServer, live_server


def wire(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_window_is_checked_with_clear_errors(
    sqlite_hub: LiveServer, sqlite_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(sqlite_url, tmp_path / "data", LABELS)
    now = datetime.now(UTC)
    with httpx.Client(base_url=sqlite_hub.url, headers=admin_headers()) as c:
        team = register_team(c, ["http://127.0.0.1:9"])
        body = {"dataset": dataset_id, "phase": "evaluation", "services": [team.service_guid]}

        r = c.post("/api/v1/runs", json={**body, "deadline": wire(now - timedelta(minutes=1))})
        assert r.status_code == 422 and r.json()["code"] == "invalid_input"
        assert "deadline" in r.json()["detail"] and "not in the future" in r.json()["detail"]

        window = {
            "start_at": wire(now + timedelta(hours=2)),
            "deadline": wire(now + timedelta(hours=1)),
        }
        r = c.post("/api/v1/runs", json={**body, **window})
        assert r.status_code == 422 and r.json()["code"] == "invalid_input"
        assert "is not after start_at" in r.json()["detail"]

        r = c.post("/api/v1/runs", json={**body, "deadline": "tomorrow"})
        assert r.status_code == 422 and "body.deadline" in r.json()["detail"]
        # Hostile input: a time whose UTC form leaves the calendar is a 422, not a 500.
        r = c.post("/api/v1/runs", json={**body, "start_at": "0001-01-01T00:00:00+01:00"})
        assert r.status_code == 422 and "body.start_at" in r.json()["detail"]
        assert "outside the years" in r.json()["detail"]

        # Times in any offset are kept in UTC and shown with `Z`.
        start = (now + timedelta(hours=1)).replace(microsecond=0)
        local = start.astimezone(datetime.now().astimezone().tzinfo).isoformat()
        run = start_run(
            c,
            dataset_id,
            "evaluation",
            services=[team.service_guid],
            start_at=local,
            deadline=wire(start + timedelta(hours=3)),
        )
        assert run["state"] == "queued" and run["stopped_at_deadline"] is False
        assert run["start_at"] == wire(start)
        assert run["deadline"] == wire(start + timedelta(hours=3))
        assert c.post(f"/api/v1/runs/{run['id']}/cancel").status_code == 200

        # A team's dry run takes the organizer's settings: no window of its own.
        r = c.post(
            "/api/v1/runs",
            json={"dataset": dataset_id, "phase": "dryrun", "start_at": window["start_at"]},
            headers={"Authorization": f"Bearer {team.api_key}"},
        )
        assert r.status_code == 403 and "start_at" in r.json()["detail"]


def test_a_run_stopped_by_its_deadline_says_so(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
    gate = threading.Event()  # never opened before the deadline: nothing is answered
    app, seen = recognizer_app(lambda body: "cat:0.9", gate=gate)
    try:
        with (
            live_server(app) as recognizer,
            httpx.Client(base_url=hub.url, headers=admin_headers()) as c,
        ):
            team = register_team(c, [recognizer.url])
            # Time for the worker to send its first request even on a loaded machine.
            deadline = datetime.now(UTC) + timedelta(seconds=3)
            run = start_run(
                c,
                dataset_id,
                "dryrun",
                services=[team.service_guid],
                timeout_s=300,
                deadline=wire(deadline),
            )
            done = wait_for(c, run["id"], {"completed"})
            assert seen.requests >= 1  # it was sent, and never answered
            gate.set()
    finally:
        gate.set()
    assert done["stopped_at_deadline"] is True
    (member,) = done["services"]
    assert member["outcomes"]["missed"] == 4 and member["done"] == member["total"] == 4
    # A dry run passes only when every image ended ok.
    assert member["status"] == "failed" and "missed 4" in member["reason"]

"""`recoghub run start --start-at/--deadline`, the window in `run list` and `run show`,
and the runs table at 80 columns."""

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from sqlalchemy import select

from gateway.cli.run_list import parse_moment, runs_table
from gateway.db import make_engine
from gateway.runs.models import Run
from tests.builders import register_team
from tests.cli.test_run_cli import recoghub
from tests.runs.api_builders import LABELS, poll_until, reach_deadline, seed_dataset
from tests.runs.builders import recognizer_app
from tests.servers import LiveServer, live_server


def run_row(run_id: int, dataset: str, state: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": run_id,
        "dataset": dataset,
        "phase": "evaluation",
        "metric": "coverage_at_95",
        "state": state,
        "services": [{"done": 100000, "total": 100000}] * 3,
        "created_at": "2026-11-30T00:00:01.123Z",
        "start_at": None,
        "deadline": None,
        "stopped_at_deadline": False,
        "published": True,
        **extra,
    }


def render(width: int) -> str:
    runs = [
        run_row(1, "imagenet-val-2016-full", "completed"),
        run_row(
            2,
            "dev",
            "completed",
            start_at="2026-11-30T10:00:00Z",
            deadline="2026-11-30T18:00:00Z",
            stopped_at_deadline=True,
        ),
        run_row(3, "dev", "cancelled"),
    ]
    console = Console(width=width, record=True, color_system=None)
    console.print(runs_table(runs, width=width))
    return console.export_text()


def test_at_80_columns_no_word_is_cut_and_a_caption_says_what_is_left_out() -> None:
    text = render(80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "…" not in text
    for whole in ("completed*", "cancelled", "evaluation", "300000/300000", "11-30 18:00"):
        assert whole in text, text
    assert "left out to fit 80 columns: services, created" in text
    assert "* stopped at its deadline" in text


def test_a_wide_terminal_shows_every_column_and_the_window() -> None:
    text = render(200)
    assert "left out" not in text
    for column in ("metric", "services", "created", "starts", "deadline", "published"):
        assert column in text
    assert "11-30 10:00" in text and "11-30 00:00" in text


def test_times_are_iso_or_from_now() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert parse_moment("+90m", now=now) == now + timedelta(minutes=90)
    assert parse_moment("+1.5h", now=now) == now + timedelta(hours=1.5)
    assert parse_moment("2026-12-01T18:00:00Z") == datetime(2026, 12, 1, 18, tzinfo=UTC)
    assert parse_moment("2026-12-01T18:00") == datetime(2026, 12, 1, 18, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a time: give ISO 8601"):
        parse_moment("tomorrow")


def test_start_with_a_window_shows_it_in_list_and_show(
    sqlite_hub: LiveServer, sqlite_url: str, tmp_path: Path
) -> None:
    seed_dataset(sqlite_url, tmp_path / "data", LABELS)
    with httpx.Client(base_url=sqlite_hub.url) as c:
        team = register_team(c, ["http://127.0.0.1:9"])
    start = ["start", "--dataset", "pets", "--phase", "evaluation", "--service", team.service_guid]

    code, out = recoghub(sqlite_hub, *start, "--start-at", "+1h", "--deadline", "+3h", "--json")
    assert code == 0, out
    run = json.loads(out)
    assert run["state"] == "queued"
    start_at = datetime.fromisoformat(run["start_at"])
    deadline = datetime.fromisoformat(run["deadline"])
    assert deadline - start_at == timedelta(hours=2)

    code, out = recoghub(sqlite_hub, "show", str(run["id"]))
    assert code == 0 and f"starts {run['start_at']}" in out and f"deadline {run['deadline']}" in out
    code, out = recoghub(sqlite_hub, "list", "--json")
    assert code == 0 and json.loads(out)[0]["deadline"] == run["deadline"]

    # The hub's 422 in one line; a time the CLI cannot read is refused before sending.
    code, out = recoghub(sqlite_hub, *start, "--deadline", "2020-01-01T00:00:00Z")
    assert code == 1 and "422" in out and "not in the future" in out
    code, out = recoghub(sqlite_hub, *start, "--start-at", "+2h", "--deadline", "+1h")
    assert code == 1 and "is not after start_at" in out
    code, out = recoghub(sqlite_hub, *start, "--deadline", "soon")
    assert code == 1 and "--deadline: 'soon' is not a time" in out


def bring_the_deadline_forward(database_url: str) -> None:
    """Once a run is running, its deadline is now (the hub's worker sees it at its next
    tick); if none starts, the deadline comes in its own time."""
    engine = make_engine(database_url)
    try:

        def running() -> int | None:
            with engine.connect() as conn:
                return conn.scalar(select(Run.id).where(Run.state == "running"))

        run_id = poll_until(running, "the run to start")
    finally:
        engine.dispose()
    reach_deadline(database_url, run_id)


def test_a_run_stopped_at_its_deadline_says_so_in_watch_list_and_leaderboard(
    sqlite_hub: LiveServer, sqlite_url: str, tmp_path: Path
) -> None:
    seed_dataset(sqlite_url, tmp_path / "data", LABELS)
    gate = threading.Event()  # nothing is answered before the deadline
    app, _ = recognizer_app(lambda body: "cat:0.9", gate=gate)
    try:
        with live_server(app) as rec, httpx.Client(base_url=sqlite_hub.url) as c:
            team = register_team(c, [rec.url], name="alpha")
            # The CLI turns "+6s" into a time before it posts: seconds to spare for a
            # busy machine, where "+2s" reached the hub already past (422). Once the run
            # is under way its deadline is brought forward to now, not waited for.
            forward = threading.Thread(target=bring_the_deadline_forward, args=(sqlite_url,))
            forward.start()
            code, out = recoghub(
                sqlite_hub, "start", "--dataset", "pets", "--phase", "evaluation",
                "--service", team.service_guid, "--timeout", "300", "--deadline", "+6s",
                "--watch", "--interval", "0.1",
            )  # fmt: skip
            forward.join()
            assert code == 0, out
            assert "completed" in out and "stopped at its deadline" in out
            run_id = json.loads(recoghub(sqlite_hub, "list", "--json")[1])[0]["id"]

            code, out = recoghub(sqlite_hub, "list")
            assert code == 0 and "completed*" in out and "* stopped at its deadline" in out
            code, out = recoghub(sqlite_hub, "leaderboard", str(run_id))
            assert code == 0 and f"run {run_id} stopped at its deadline" in out
            code, out = recoghub(sqlite_hub, "leaderboard", str(run_id), "--json")
            assert json.loads(out)[0]["outcomes"]["missed"] == 4
            gate.set()  # the recognizer's held handlers end before it stops
    finally:
        gate.set()

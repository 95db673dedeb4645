"""`recoghub-cli challenges | phases | submit | submissions | select | standings` against
a live hub and live sample recognizers: what a team in a challenge sees and is told."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from typer.testing import CliRunner

from cmdline_tool.main import app
from tests.builders import Team, register_team
from tests.challenges.builders import create_challenge, iso, phase_body
from tests.runs.api_builders import CAT_DOG, LABELS, recognizers, seed_dataset, wait_for
from tests.servers import LiveServer

CLEAN_ENV: dict[str, str | None] = {
    "RECOGHUB_HUB": None,
    "RECOGHUB_API_KEY": None,
    "RECOGHUB_SERVICE": None,
    "RECOGHUB_PROVIDER": None,
}


def team_cli(hub: LiveServer, team: Team, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, [*args, "--hub", hub.url, "--key", team.api_key], env=CLEAN_ENV
    )
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_a_team_enters_a_challenge_from_the_command_line(
    sqlite_hub: LiveServer, sqlite_url: str, tmp_path: Path
) -> None:
    hub = sqlite_hub
    seed_dataset(sqlite_url, tmp_path / "data", LABELS, name="pets")
    now = datetime.now(UTC)
    with recognizers(CAT_DOG) as (server,), httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [server.url], name="alpha")
        create_challenge(
            c,
            "pets-cup",
            phase_body(
                submission_limit={"total": 2},
                counts="selected",
                public_fraction=0.5,
                seed=3,
                metric="top1",
            ),
            phase_body(
                name="daily",
                submission_limit={"per_day": 1},
                closes_at=iso(now + timedelta(days=3)),
            ),
            phase_body(name="blind", visible="at_close"),
            phase_body(
                name="later",
                opens_at=iso(now + timedelta(days=2)),
                closes_at=iso(now + timedelta(days=3)),
            ),
        )
        code, out = team_cli(hub, alpha, "challenges")
        assert code == 0 and "pets-cup" in out and "Pets cup" in out
        code, out = team_cli(hub, alpha, "phases", "pets-cup")
        assert code == 0, out
        assert "0 made, 2 left" in out and "selected (up to 1)" in out
        assert "live scores on 50% of the images" in out

        runs = []
        for made, left in ((1, 1), (2, 0)):
            code, out = team_cli(
                hub, alpha, "submit", "pets-cup", "final", "--service", alpha.service_guid
            )
            assert code == 0, out
            assert "accepted" in out and f"{made} made, {left} left" in out
            runs.append(int(out.split("run ")[1].split()[0]))
        # Over the limit: one line, with what to do; exit 1.
        code, out = team_cli(
            hub, alpha, "submit", "pets-cup", "final", "--service", alpha.service_guid
        )
        assert code == 1
        (line,) = error_lines(out)
        assert "limit (total 2) allows no more" in line
        assert "no submission left in this phase" in line
        # A rolling daily limit says when the next one is allowed, in UTC too.
        assert (
            team_cli(hub, alpha, "submit", "pets-cup", "daily", "--service", alpha.service_guid)[0]
            == 0
        )
        code, out = team_cli(
            hub, alpha, "submit", "pets-cup", "daily", "--service", alpha.service_guid, "--json"
        )
        assert code == 1
        refused = json.loads(out.splitlines()[-1])
        assert refused["code"] == "quota_exceeded"
        assert refused["hint"].startswith("your next submission is allowed at ")
        assert refused["hint"].endswith(" UTC") or refused["hint"].endswith(" UTC)")
        # Outside the window: the window.
        code, out = team_cli(
            hub, alpha, "submit", "pets-cup", "later", "--service", alpha.service_guid
        )
        assert code == 1
        (line,) = error_lines(out)
        assert "phase later opens at" in line and "the phase takes submissions from" in line
        # A file that is not there is named before anything is sent.
        code, out = team_cli(
            hub, alpha, "submit", "pets-cup", "final", str(tmp_path / "p.csv"), "--format", "csv"
        )
        assert code == 1 and "no file at" in out

        for run_id in runs:
            wait_for(c, run_id, {"completed"})
        code, out = team_cli(hub, alpha, "submissions", "pets-cup", "final", "--json")
        assert code == 0, out
        listed = json.loads(out)["submissions"]
        assert [s["run_id"] for s in listed] == runs
        assert {s["scores"]["part"] for s in listed} == {"public"}
        code, out = team_cli(hub, alpha, "submissions", "pets-cup", "final")
        assert code == 0 and "top1 on the public part" in out and "2 made, 0 left" in out

        first = listed[0]["id"]
        code, out = team_cli(hub, alpha, "select", str(first))
        assert code == 0 and f"submission {first} in pets-cup/final selected" in out, out
        code, out = team_cli(hub, alpha, "select", "999999")
        assert code == 1 and "no submission 999999" in out

        code, out = team_cli(hub, alpha, "standings", "pets-cup", "final")
        assert code == 0, out
        assert "live scores on the public part" in out and "alpha / alpha-svc" in out
        code, out = team_cli(hub, alpha, "standings", "pets-cup", "final", "--json")
        board = json.loads(out)
        assert board["final"] is False and board["rows"][0]["submission_id"] == first

        # Its run's progress counts the public part only, and says so.
        code, out = team_cli(hub, alpha, "status", str(runs[0]))
        assert code == 0 and "public part of the images only" in out, out
        # A blind phase shows no score: its standings are refused with what to expect.
        blind = team_cli(hub, alpha, "submit", "pets-cup", "blind", "--service", alpha.service_guid)
        assert blind[0] == 0, blind[1]
        code, out = team_cli(hub, alpha, "standings", "pets-cup", "blind")
        assert code == 1
        (line,) = error_lines(out)
        assert "shows its leaderboard at close" in line and "once the organizer publishes" in line
        code, out = team_cli(hub, alpha, "submissions", "pets-cup", "blind", "--json")
        assert [s["scores"] for s in json.loads(out)["submissions"]] == [None]

        code, out = team_cli(hub, alpha, "phases", "no-such-cup")
        assert code == 1
        (line,) = error_lines(out)
        assert "recoghub-cli challenges" in line

"""`recoghub service disable|enable|set-endpoints`: the organizer's hand on a team's
service, against a live hub on SQLite and PostgreSQL."""

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gateway.cli.main import app
from tests.builders import ADMIN_TOKEN, admin_headers, bearer, register_team
from tests.runs.api_builders import LABELS, seed_dataset, start_run
from tests.servers import LiveServer

runner = CliRunner()


def recoghub(hub: LiveServer, *args: str, token: str = ADMIN_TOKEN) -> tuple[int, str]:
    result = runner.invoke(
        app, ["service", *args, "--hub", hub.url, "--token", token], catch_exceptions=False
    )
    return result.exit_code, result.output


def test_the_organizer_disables_enables_and_moves_a_teams_service(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed_dataset(database_url, tmp_path / "data", LABELS)
    with httpx.Client(base_url=hub.url) as c:
        alpha = register_team(c, ["http://127.0.0.1:9"], name="alpha")
        beta = register_team(c, ["http://127.0.0.1:9"], name="beta")

        code, out = recoghub(hub, "disable", alpha.service_guid)
        assert code == 0 and "disabled: new runs leave it out" in out and "alpha" in out
        # The team sees it, and a run of every enabled service leaves it out.
        own = c.get(f"/api/v1/services/{alpha.service_guid}", headers=bearer(alpha.api_key))
        assert own.json()["enabled"] is False
        run = start_run(c, "pets", "evaluation")
        assert [s["service_guid"] for s in run["services"]] == [beta.service_guid]
        c.post(f"/api/v1/runs/{run['id']}/cancel", headers=admin_headers())

        code, out = recoghub(hub, "enable", alpha.service_guid, "--json")
        assert code == 0 and json.loads(out)["enabled"] is True

        urls = ["http://127.0.0.1:10", "http://127.0.0.1:11"]
        code, out = recoghub(hub, "set-endpoints", alpha.service_guid, *urls)
        assert code == 0 and "endpoints now http://127.0.0.1:10, http://127.0.0.1:11" in out
        own = c.get(f"/api/v1/services/{alpha.service_guid}", headers=bearer(alpha.api_key))
        assert own.json()["endpoints"] == urls


def test_service_commands_fail_in_one_clear_line(sqlite_hub: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_hub.url) as c:
        alpha = register_team(c, ["http://127.0.0.1:9"], name="alpha")
        beta = register_team(c, ["http://127.0.0.1:9"], name="beta")

    # Another team's key is refused: the admin token is what these commands need.
    code, out = recoghub(sqlite_hub, "disable", alpha.service_guid, token=beta.api_key)
    assert code == 1 and "403" in out and "another provider" in out
    code, out = recoghub(sqlite_hub, "enable", alpha.service_guid, token="wrong")
    assert code == 1 and "401" in out

    code, out = recoghub(sqlite_hub, "disable", alpha.provider_guid)
    assert code == 1 and "is a provider GUID, not a service GUID" in out

    code, out = recoghub(sqlite_hub, "set-endpoints", alpha.service_guid, "ftp://team-a")
    assert code == 1 and "422" in out and "endpoints" in out and "Traceback" not in out

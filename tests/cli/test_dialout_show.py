"""`service show` of a dial-out service in both CLIs: endpoints "none (dial-out)", and
whether a recognizer is connected out to the hub now (SPEC §10)."""

from pathlib import Path

import httpx
from typer.testing import CliRunner

from gateway.cli.main import app
from tests.builders import ADMIN_TOKEN, admin_headers, register_team
from tests.cli.team_tool import cli
from tests.dialout.support import dialout_recognizer
from tests.servers import LiveServer

runner = CliRunner()


def organizer_show(hub: LiveServer, guid: str) -> str:
    result = runner.invoke(app, ["service", "show", guid, "--hub", hub.url, "--token", ADMIN_TOKEN])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def team_show(hub: LiveServer, guid: str, key: str) -> str:
    code, output = cli("service", "show", "--service", guid, "--hub", hub.url, "--key", key)
    assert code == 0, output
    return " ".join(output.split())


def test_a_dial_out_service_shows_no_endpoints_and_whether_one_is_connected(
    sqlite_hub: LiveServer, tmp_path: Path
) -> None:
    with httpx.Client(base_url=sqlite_hub.url, headers=admin_headers(), timeout=30) as c:
        team = register_team(c, [], name="Firewalled")

    for shown in (
        organizer_show(sqlite_hub, team.service_guid),
        team_show(sqlite_hub, team.service_guid, team.api_key),
    ):
        assert "none (dial-out)" in shown, shown
        assert "none connected: start one with `recoghub-recognizer --connect`" in shown

    with dialout_recognizer(sqlite_hub.url, team, tmp_path):
        for shown in (
            organizer_show(sqlite_hub, team.service_guid),
            team_show(sqlite_hub, team.service_guid, team.api_key),
        ):
            assert "none (dial-out)" in shown, shown
            assert "1 connected (" in shown, shown

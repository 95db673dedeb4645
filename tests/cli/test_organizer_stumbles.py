"""A newcomer organizer's stumbles (issue 20), each as first met through `recoghub`."""

import httpx
import pytest
from typer.testing import CliRunner

from gateway.cli.main import app
from tests.builders import ADMIN_TOKEN, register_team
from tests.servers import LiveServer

# Sign-in mistakes: no test here dispatches a run.
pytestmark = pytest.mark.api_only

runner = CliRunner()


def recoghub(hub: LiveServer, *args: str, token: str = ADMIN_TOKEN) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--hub", hub.url, "--token", token])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def test_a_team_key_as_admin_token_says_who_is_signed_in(sqlite_hub: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_hub.url) as client:
        team = register_team(client, ["https://recog.example.org"], name="Owls")

    code, out = recoghub(sqlite_hub, "run", "list", token=team.api_key)
    assert code == 0, out
    said = " ".join(out.split())
    assert f"signed in as team 'Owls' ({team.provider_guid}), not the organizer" in said
    assert "only that team's runs are shown" in said

    code, out = recoghub(sqlite_hub, "run", "list")
    assert code == 0 and "signed in as" not in out

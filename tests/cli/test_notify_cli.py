"""`recoghub-cli notify` against a live hub and a live webhook receiver: a team sets its
URL, sees the secret once, sends a test event and reads its receiver's answer."""

import re

import httpx
import pytest
from typer.testing import CliRunner

from cmdline_tool.main import app
from tests.builders import ADMIN_TOKEN as ADMIN
from tests.builders import Team, register_team
from tests.cli.team_tool import CLEAN_ENV
from tests.notify.receiver import running_receiver
from tests.servers import LiveServer

# Webhook settings and tests: no test here dispatches a run.
pytestmark = pytest.mark.api_only


def cli(team: Team, hub: LiveServer, *args: str) -> tuple[int, str]:
    env = {**CLEAN_ENV, "RECOGHUB_HUB": hub.url, "RECOGHUB_API_KEY": team.api_key}
    result = CliRunner().invoke(app, ["notify", *args], env=env)
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def secret_in(output: str) -> str:
    found = re.search(r"notification secret \(shown only now\): (\S+)", output)
    assert found, output
    return found.group(1)


def test_a_team_sets_tests_and_rotates_its_webhook(hub: LiveServer) -> None:
    with httpx.Client(base_url=hub.url) as client:
        team = register_team(client, [])
    with running_receiver() as receiver:
        url = f"{receiver.url}/hook"
        assert cli(team, hub, "show") == (
            0,
            "no notification URL is set; set one: recoghub-cli notify set URL\n",
        )
        code, out = cli(team, hub, "set", url)
        assert code == 0, out
        secret = secret_in(out)
        assert cli(team, hub, "show") == (0, f"the hub posts your team's events to {url}\n")

        code, out = cli(team, hub, "test")
        assert (code, out) == (0, f"your receiver at {url} answered 200\n")
        (post,) = receiver.answered("/hook")
        assert post.event["event"] == "test"
        assert post.event["provider_guid"] == team.provider_guid
        assert post.signature_problem(secret) is None

        # A second `set` keeps the secret (and does not show it); a rotation shows the new.
        code, out = cli(team, hub, "set", url)
        assert code == 0 and "secret" not in out
        code, out = cli(team, hub, "rotate-secret")
        rotated = secret_in(out)
        assert rotated != secret
        receiver.statuses["/hook"] = [503]
        code, out = cli(team, hub, "test")
        assert code == 1
        assert f"your receiver at {url} did not take the test event: HTTP 503" in out
        last = receiver.posts[-1]
        assert last.signature_problem(rotated) is None
        assert last.signature_problem(secret) == "signature does not match"

        code, out = cli(team, hub, "clear")
        assert (code, out) == (0, "notifications stopped: no URL is set\n")
        code, out = cli(team, hub, "test")
        assert code == 1 and "has no notification URL" in out


def test_a_webhook_at_a_private_address_is_refused_by_the_cli(hub: LiveServer) -> None:
    with httpx.Client(base_url=hub.url) as client:
        team = register_team(client, [])
    code, out = cli(team, hub, "set", "http://192.168.1.20:9000/hook")
    assert code == 1
    assert "a private address" in out and "RECOGHUB_ENDPOINT_ALLOW" in out


def test_the_organizer_sets_and_tests_a_teams_webhook(hub: LiveServer) -> None:
    from gateway.cli.main import app as recoghub

    with httpx.Client(base_url=hub.url) as client:
        team = register_team(client, [])
    runner = CliRunner()

    def organizer(*args: str) -> tuple[int, str]:
        result = runner.invoke(recoghub, ["provider", *args, "--hub", hub.url, "--token", ADMIN])
        assert "Traceback" not in result.output, result.output
        return result.exit_code, result.output

    with running_receiver() as receiver:
        url = f"{receiver.url}/team"
        code, out = organizer("notify", team.provider_guid, url)
        assert code == 0, out
        secret = re.search(r"hand it to the team\): (\S+)", out)
        assert secret, out
        code, out = organizer("notify-test", team.provider_guid)
        assert (code, out.strip()) == (0, f"{url} answered 200")
        (post,) = receiver.answered("/team")
        assert post.signature_problem(secret.group(1)) is None
        code, out = organizer("notify", team.provider_guid, "--clear")
        assert code == 0 and "notifications stopped" in out

"""`recoghub-cli` when the hub is down, slow or broken, or the tool is misused: one line
that names what went wrong (its ping, the hub's errors, the console script)."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway import __version__
from gateway.relay import service as relay
from tests.cli.team_tool import cli, lines, team_on
from tests.servers import LiveServer, live_server

# The team tool's ping and errors reach the API process only: no test here dispatches a run.
pytestmark = pytest.mark.api_only


def test_ping_prints_the_hub_version(sqlite_hub: LiveServer) -> None:
    code, output = cli("ping", "--hub", sqlite_hub.url)
    assert code == 0
    assert "is up" in output and __version__ in output

    code, output = cli("ping", "--json", env={"RECOGHUB_HUB": sqlite_hub.url})
    assert code == 0
    assert json.loads(output)["version"] == __version__


def test_ping_of_a_hub_that_is_down_names_the_hub(refused_url: Callable[[], str]) -> None:
    url = refused_url()
    code, output = cli("ping", "--hub", url)
    assert code == 1
    assert lines(output) == [
        f"error: cannot reach the hub at {url} — is it running? check --hub / RECOGHUB_HUB"
    ]


def test_ping_of_a_recognizer_instead_of_the_hub_says_so(up: LiveServer) -> None:
    code, output = cli("ping", "--hub", up.url)
    assert code == 1
    assert "not as a RecogHub hub does" in output and len(lines(output)) == 1


@contextmanager
def fake_hub(*, status: int = 200, delay_s: float = 0.0) -> Iterator[LiveServer]:
    """A server in the hub's place whose every answer is `status` as plain text (a proxy
    before a hub that is down), after `delay_s`."""

    async def anything(request: Request) -> Response:
        await asyncio.sleep(delay_s)
        return PlainTextResponse("Bad Gateway", status_code=status)

    app = Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST"])])
    with live_server(app) as server:
        yield server


def test_a_hub_answering_5xx_without_its_json_is_named() -> None:
    with fake_hub(status=502) as hub:
        code, output = cli("ping", "--hub", hub.url)
    assert code == 1
    assert lines(output) == [
        f"error: the hub at {hub.url} answered HTTP 502 without a RecogHub error — "
        "is the hub running behind its proxy? try again or tell the organizer"
    ]


def test_a_hub_that_does_not_answer_in_time_is_named() -> None:
    # The answer would come after 3 s; the tool waits 0.2 s.
    with fake_hub(delay_s=3.0) as hub:
        code, output = cli("ping", "--hub", hub.url, "--timeout", "0.2")
    assert code == 1
    assert lines(output) == [
        f"error: the hub at {hub.url} did not answer within 0.2 s — "
        "raise --timeout, or ask the organizer whether the hub is overloaded"
    ]


def test_an_internal_error_of_the_hub_is_passed_on_with_its_request_id(
    sqlite_hub: LiveServer, up: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = team_on(sqlite_hub, [up.url])

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug of the hub")

    monkeypatch.setattr(relay, "check_target", broken)
    code, output = cli(
        "check", "--hub", sqlite_hub.url, "--service", team.service_guid, "--key", team.api_key
    )
    assert code == 1
    [line] = lines(output)
    assert line.startswith("error: the hub failed: HTTP 500 internal_error: ")
    assert "quote request id " in line and "tell the organizer" in line
    assert "a bug of the hub" not in line


def test_missing_settings_are_named(image: Path) -> None:
    code, output = cli("recog", str(image))
    assert code == 1
    assert lines(output) == ["error: no hub URL given — pass --hub URL or set RECOGHUB_HUB"]


def test_an_unexpected_error_is_still_one_line(
    monkeypatch: pytest.MonkeyPatch, image: Path
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("cmdline_tool.main.collect", broken)
    code, output = cli(
        "recog", "--hub", "h:1", "--service", "s", "--provider", "p", "--key", "k", str(image)
    )
    assert code == 1
    [line] = lines(output)
    assert "RuntimeError: boom" in line and "bug in recoghub-cli" in line


def console_script(*args: str) -> subprocess.CompletedProcess[str]:
    """`recoghub-cli ARGS` as a person runs it: its own process, through `main()`."""
    return subprocess.run(
        [sys.executable, "-m", "cmdline_tool.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("RECOGHUB_")},
    )


def test_the_console_script_fails_in_one_line(refused_url: Callable[[], str]) -> None:
    url = refused_url()
    done = console_script("ping", "--hub", url, "--json")
    assert done.returncode == 1
    assert lines(done.stderr) == [
        f"error: cannot reach the hub at {url} — is it running? check --hub / RECOGHUB_HUB"
    ]
    assert json.loads(done.stdout)["code"] == "hub_unreachable"


def test_a_usage_error_is_one_line_too() -> None:
    done = console_script("recog", "--concurrency", "0", "x.png")
    assert done.returncode == 2
    [line] = lines(done.stderr)
    assert line.startswith("error: Invalid value for '--concurrency'")
    assert line.endswith("— see `recoghub-cli recog --help`")

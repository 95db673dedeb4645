"""`recoghub-cli` as the team tool's tests run it: in-process, with a clean environment,
against live hubs and sample recognizers (tests/cli/test_team_*.py)."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from cmdline_tool.main import app
from sample_recognizer.app import create_recognizer_app
from sample_recognizer.config import RecognizerConfig
from tests.builders import Team, hub_settings, register_team
from tests.servers import LiveServer, live_server

# The tool reads these; the tests must not pick them up from the shell that runs them.
CLEAN_ENV: dict[str, str | None] = {
    "RECOGHUB_HUB": None,
    "RECOGHUB_API_KEY": None,
    "RECOGHUB_SERVICE": None,
    "RECOGHUB_PROVIDER": None,
}


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={**CLEAN_ENV, **(env or {})})
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


@contextmanager
def recognizer(**config: Any) -> Iterator[LiveServer]:
    with live_server(create_recognizer_app(RecognizerConfig(**config))) as server:
        yield server


@contextmanager
def hub_with(tmp_path: Path, **overrides: object) -> Iterator[LiveServer]:
    from gateway.app import create_app

    settings = hub_settings(
        f"sqlite:///{tmp_path / 'own-hub.db'}",
        tmp_path / "own-data",
        embedded_worker=False,
        **overrides,
    )
    with live_server(create_app(settings)) as server:
        yield server


def team_on(hub: LiveServer, endpoints: list[str]) -> Team:
    with httpx.Client(base_url=hub.url, timeout=10) as client:
        return register_team(client, endpoints)


def recog(
    hub: LiveServer, team: Team, *paths: Path | str, extra: tuple[str, ...] = ()
) -> tuple[int, str]:
    """`recoghub-cli recog` as `team`, with its own GUIDs and key."""
    return cli("recog", *as_team(hub, team), *extra, *(str(p) for p in paths))


def as_team(hub: LiveServer, team: Team) -> list[str]:
    """The options that name `hub` and `team`: its GUIDs and its key."""
    return [
        "--hub",
        hub.url,
        "--service",
        team.service_guid,
        "--provider",
        team.provider_guid,
        "--key",
        team.api_key,
    ]

"""With no RECOGHUB_ADMIN_TOKEN the hub generates one at first start and prints it once."""

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.auth import hash_token
from tests.builders import bearer, hub_settings
from tests.servers import live_server

TOKEN = re.compile(r"^\s+(ra_\S+)$", re.MULTILINE)


def test_a_generated_admin_token_is_printed_once_and_stored_hashed(
    database_url: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    database_dump: Callable[[], str],
) -> None:
    settings = hub_settings(
        database_url, tmp_path / "data", admin_token=None, embedded_worker=False
    )

    with live_server(create_app(settings)) as hub:
        first = capfd.readouterr().err
        tokens = TOKEN.findall(first)
        assert len(tokens) == 1, first
        token = tokens[0]
        assert "shown only now" in first
        assert httpx.get(f"{hub.url}/api/v1/providers", headers=bearer(token)).status_code == 200
        wrong = httpx.get(f"{hub.url}/api/v1/providers", headers=bearer(token + "x"))
        assert wrong.status_code == 401

    with live_server(create_app(settings)) as hub:
        second = capfd.readouterr().err
        assert "ra_" not in second
        assert "admin token" not in second
        assert httpx.get(f"{hub.url}/api/v1/providers", headers=bearer(token)).status_code == 200

    stored = database_dump()
    assert token not in stored
    assert hash_token(token) in stored

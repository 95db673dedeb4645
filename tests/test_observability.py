"""`GET /metrics`: Prometheus text, open to anyone or for the organizer only by setting."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.builders import admin_headers, bearer, hub_settings, register_team
from tests.servers import LiveServer, live_server


@pytest.fixture
def admin_only_hub(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    from gateway.app import create_app

    settings = hub_settings(sqlite_url, tmp_path / "data", metrics_require_admin=True)
    with live_server(create_app(settings)) as server:
        yield server


def test_metrics_are_open_by_default_as_prometheus_text(sqlite_hub: LiveServer) -> None:
    r = httpx.get(f"{sqlite_hub.url}/metrics")

    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE recoghub_recognizer_attempts_total counter" in r.text
    assert "# TYPE recoghub_recognizer_latency_seconds histogram" in r.text


def test_admin_only_metrics_refuse_anyone_else(admin_only_hub: LiveServer) -> None:
    with httpx.Client(base_url=admin_only_hub.url, timeout=30) as client:
        team = register_team(client, ["http://127.0.0.1:1"])
        anonymous = client.get("/metrics")
        provider = client.get("/metrics", headers=bearer(team.api_key))
        organizer = client.get("/metrics", headers=admin_headers())

    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"
    assert provider.status_code == 403
    assert provider.json()["code"] == "forbidden"
    assert organizer.status_code == 200
    assert "recoghub_recognizer_attempts_total" in organizer.text

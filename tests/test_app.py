import httpx
import pytest

from tests.servers import LiveServer

# Ping and errors of the API: no test here dispatches a run.
pytestmark = pytest.mark.api_only


def test_ping_answers_status_and_version(hub: LiveServer) -> None:
    r = httpx.get(f"{hub.url}/api/v1/ping")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["version"]


def test_unknown_route_is_json_error(sqlite_hub: LiveServer) -> None:
    r = httpx.get(f"{sqlite_hub.url}/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"

"""A change to a service reaches the relay at once in the hub process that made it, even
though the relay caches its targets (SPEC §9, issue 7 point 7)."""

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.relay.service import target_cache
from tests.builders import bearer, hub_settings, png_bytes, register_team
from tests.servers import LiveServer, live_server

Recognizers = Callable[..., str]


@pytest.fixture
def long_cache_hub(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A hub whose relay cache keeps a target for an hour: only invalidation can help."""
    from gateway.app import create_app

    app = create_app(hub_settings(sqlite_url, tmp_path / "data", embedded_worker=False))
    with live_server(app) as server:
        target_cache(app.state.hub).ttl_s = 3600
        yield server


def _relay(client: httpx.Client, guid: str, token: str) -> httpx.Response:
    return client.post(
        f"/api/v1/services/{guid}/recognize", content=png_bytes(), headers=bearer(token)
    )


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ("disable", 409, "service_disabled"),
        ("delete", 404, "not_found"),
        ("endpoints", 200, None),
    ],
)
def test_a_change_reaches_the_relay_at_once(
    long_cache_hub: LiveServer, recognizers: Recognizers, change: str, status: int, code: str
) -> None:
    old, new = recognizers(answer="old:1"), recognizers(answer="new:1")
    with httpx.Client(base_url=long_cache_hub.url, timeout=30) as client:
        team = register_team(client, [old])
        service = f"/api/v1/services/{team.service_guid}"
        as_team = bearer(team.api_key)
        for _ in range(2):  # the second is served from the cache
            assert _relay(client, team.service_guid, team.api_key).json()["raw"] == "old:1"

        if change == "disable":
            r = client.patch(service, json={"enabled": False}, headers=as_team)
        elif change == "delete":
            r = client.delete(service, headers=as_team)
        else:
            r = client.patch(service, json={"endpoints": [new]}, headers=as_team)
        assert r.status_code in (200, 204), r.text
        after = _relay(client, team.service_guid, team.api_key)

    assert after.status_code == status, after.text
    if code is not None:
        assert after.json()["code"] == code
    else:
        assert after.json()["raw"] == "new:1"
        assert after.json()["instance"] == new

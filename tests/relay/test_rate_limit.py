"""Rate limits per API key on relay and check: 429 with Retry-After past the burst,
each key its own bucket, the organizer never limited."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from gateway.auth import ADMIN_SECRET_NAME, hash_token
from gateway.db import make_engine
from gateway.errors import RateLimited
from gateway.migrate import upgrade
from gateway.registry.models import HubSecret
from gateway.token_bucket import RateLimiter
from tests.builders import admin_headers, bearer, hub_settings, png_bytes, register_team
from tests.servers import LiveServer, live_server

# About one request every 100 s after the burst: no refill can happen during a test.
TRICKLE = 0.01


@contextmanager
def limited_hub(database_url: str, tmp_path: Path, **limits: object) -> Iterator[LiveServer]:
    from gateway.app import create_app

    settings = hub_settings(database_url, tmp_path / "data", embedded_worker=False, **limits)
    with live_server(create_app(settings)) as hub:
        yield hub


def relay(client: httpx.Client, guid: str, headers: dict[str, str]) -> httpx.Response:
    return client.post(
        f"/api/v1/services/{guid}/recognize",
        content=png_bytes(),
        headers={**headers, "Content-Type": "image/png"},
    )


def test_a_burst_past_the_relay_limit_gets_429_with_retry_after(
    recognizers: Callable[..., str], sqlite_url: str, tmp_path: Path
) -> None:
    with (
        limited_hub(sqlite_url, tmp_path, relay_rate=TRICKLE, relay_burst=3) as hub,
        httpx.Client(base_url=hub.url, timeout=10) as client,
    ):
        url = recognizers()
        team, other = register_team(client, [url]), register_team(client, [url])
        answers = [relay(client, team.service_guid, bearer(team.api_key)) for _ in range(5)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
        refused = answers[3]
        assert refused.json()["code"] == "rate_limited"
        assert "RECOGHUB_RELAY_RATE" in refused.json()["detail"]
        retry_after = refused.headers["Retry-After"]
        assert retry_after.isdigit() and 1 <= int(retry_after) <= 100

        # Another team's key has its own bucket; the organizer has none.
        assert relay(client, other.service_guid, bearer(other.api_key)).status_code == 200
        for _ in range(6):
            assert relay(client, team.service_guid, admin_headers()).status_code == 200


def test_check_has_its_own_limit(
    recognizers: Callable[..., str], sqlite_url: str, tmp_path: Path
) -> None:
    with (
        limited_hub(sqlite_url, tmp_path, check_rate=TRICKLE, check_burst=2) as hub,
        httpx.Client(base_url=hub.url, timeout=10) as client,
    ):
        team = register_team(client, [recognizers()])
        check = f"/api/v1/services/{team.service_guid}/check"
        statuses = [client.post(check, headers=bearer(team.api_key)).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        # The relay's bucket is another one.
        assert relay(client, team.service_guid, bearer(team.api_key)).status_code == 200
        assert client.post(check, headers=admin_headers()).status_code == 200


def test_a_generated_admin_token_is_not_limited_either(
    recognizers: Callable[..., str], database_url: str, tmp_path: Path
) -> None:
    """With no RECOGHUB_ADMIN_TOKEN the hub knows the organizer by the stored hash."""
    engine = make_engine(database_url)
    upgrade(engine)
    with Session(engine) as session:
        session.add(HubSecret(name=ADMIN_SECRET_NAME, value_hash=hash_token("ra_stored")))
        session.commit()
    engine.dispose()
    stored_admin = bearer("ra_stored")
    with (
        limited_hub(
            database_url, tmp_path, admin_token=None, relay_rate=TRICKLE, relay_burst=1
        ) as hub,
        httpx.Client(base_url=hub.url, timeout=10) as client,
    ):
        r = client.post("/api/v1/providers", json={"name": "t"}, headers=stored_admin)
        provider = r.json()
        body = {"provider_guid": provider["guid"], "name": "s", "endpoints": [recognizers()]}
        service = client.post("/api/v1/services", json=body, headers=stored_admin).json()
        for _ in range(4):
            assert relay(client, service["guid"], stored_admin).status_code == 200
        team_key = bearer(provider["api_key"])
        assert [relay(client, service["guid"], team_key).status_code for _ in range(2)] == [
            200,
            429,
        ]


def test_a_bucket_refills_at_its_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(route="relay", rate=2.0, burst=3, clock=lambda: now[0])
    for _ in range(3):
        limiter.take("key")
    with pytest.raises(RateLimited) as refused:
        limiter.take("key")
    assert refused.value.retry_after_s == 1  # 0.5 s to the next token, said in whole seconds
    now[0] += 0.5
    limiter.take("key")
    with pytest.raises(RateLimited):
        limiter.take("key")
    now[0] += 60  # refills to the burst, no further
    for _ in range(3):
        limiter.take("key")
    with pytest.raises(RateLimited):
        limiter.take("key")
    limiter.take("other key")


def test_a_rate_of_zero_turns_the_limit_off() -> None:
    limiter = RateLimiter(route="check", rate=0.0, burst=1)
    for _ in range(100):
        limiter.take("key")


def test_the_table_of_keys_stays_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(route="relay", rate=1.0, burst=1, clock=lambda: now[0], max_keys=10)
    for n in range(100):
        limiter.take(f"key {n}")
        now[0] += 0.1
    assert len(limiter) <= 10

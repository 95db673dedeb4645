"""The connect route faces strangers and hostile teams (SPEC §10, issue 17): the key is
decided before the upgrade, nothing is compressed, nested JSON and stray results close a
connection with one log line, and connections are capped per service, provider and
process."""

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from gateway.app import create_app
from gateway.dialout import frames
from gateway.dialout.hubs import HubsCache
from tests.builders import admin_headers, bearer, hub_settings, register_team
from tests.dialout.scripted import upgrade_answer
from tests.dialout.support import hub_logs
from tests.servers import LiveServer, live_server


def hello(service_guid: str) -> str:
    return frames.hello(service_guid=service_guid, instance="door", max_concurrency=2)


@contextmanager
def hub_with(tmp_path: Path, **settings: object) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    with live_server(create_app(hub_settings(url, tmp_path / "data", **settings))) as server:
        yield server


@asynccontextmanager
async def connection(hub_url: str, token: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"{hub_url}{frames.CONNECT_PATH}", headers={"Authorization": f"Bearer {token}"}
        ) as ws,
    ):
        yield ws


async def first_answer(ws: aiohttp.ClientWebSocketResponse) -> tuple[str, Any]:
    """("welcome", message) or ("close", (code, reason))."""
    async with asyncio.timeout(30):
        message = await ws.receive()
    if message.type == aiohttp.WSMsgType.TEXT:
        return "welcome", json.loads(message.data)
    return "close", (ws.close_code, str(message.extra or ""))


async def test_no_key_or_a_bad_one_is_401_before_the_upgrade(sqlite_hub: LiveServer) -> None:
    for headers in ({}, {"Authorization": "Bearer rk_not_a_key"}):
        status, answer, body = await upgrade_answer(sqlite_hub.url, headers)
        assert status == 401, (status, body)
        error = json.loads(body)
        assert error["code"] == "unauthorized" and "RECOGHUB_API_KEY" in error["detail"]
        assert "sec-websocket-accept" not in answer


async def test_no_compression_is_negotiated(sqlite_hub: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_hub.url) as c:
        team = register_team(c, [])
    offer = {
        **bearer(team.api_key),
        "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
    }
    status, answer, _ = await upgrade_answer(sqlite_hub.url, offer)
    assert status == 101
    assert "sec-websocket-extensions" not in answer


async def test_a_deeply_nested_hello_closes_1008_with_one_log_line(sqlite_hub: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_hub.url) as c:
        team = register_team(c, [])
    with hub_logs() as records:
        async with connection(sqlite_hub.url, team.api_key) as ws:
            await ws.send_str("[" * 100_000)
            kind, (code, reason) = await first_answer(ws)
        async with connection(sqlite_hub.url, team.api_key) as ws:  # the hub goes on
            await ws.send_str(hello(team.service_guid))
            welcomed, _ = await first_answer(ws)
    assert kind == "close" and code == frames.POLICY_VIOLATION
    assert "nested too deeply" in reason
    assert welcomed == "welcome"
    nested = [r for r in records if "nested too deeply" in r.getMessage()]
    assert len(nested) == 1
    assert not [r for r in records if r.exc_info or "Traceback" in r.getMessage()]


async def test_results_for_requests_never_sent_close_the_connection(tmp_path: Path) -> None:
    with hub_with(tmp_path, dialout_stray_results=5) as hub:
        with httpx.Client(base_url=hub.url) as c:
            team = register_team(c, [])
        with hub_logs() as records:
            async with connection(hub.url, team.api_key) as ws:
                await ws.send_str(hello(team.service_guid))
                assert (await first_answer(ws))[0] == "welcome"
                for number in range(200):  # all in one go, as a flood would
                    stray = frames.result(request_id=f"never-{number}", status=200, body="x:1")
                    await ws.send_str(stray)
                async with asyncio.timeout(30):
                    while (await ws.receive()).type not in (
                        aiohttp.WSMsgType.CLOSE,
                        aiohttp.WSMsgType.CLOSED,
                    ):
                        pass
                code = ws.close_code
    assert code == frames.POLICY_VIOLATION
    closed = [r.getMessage() for r in records if "never sent" in r.getMessage()]
    # Read up to the sixth stray, not the 200 sent: the hub stopped there.
    assert len(closed) == 1 and "6 results for requests" in closed[0]
    assert "RECOGHUB_DIALOUT_STRAY_RESULTS" in closed[0]


async def test_connections_are_capped_per_service_provider_and_process(tmp_path: Path) -> None:
    caps = {
        "dialout_connections_per_service": 2,
        "dialout_connections_per_provider": 3,
        "dialout_connections_max": 4,
    }
    with hub_with(tmp_path, **caps) as hub:
        with httpx.Client(base_url=hub.url) as c:
            team = register_team(c, [], name="many")
            other = register_team(c, [], name="other")
            second = c.post(
                "/api/v1/services",
                json={"provider_guid": team.provider_guid, "name": "second", "endpoints": []},
                headers=admin_headers(),
            )
            assert second.status_code == 201, second.text
            second_guid = second.json()["guid"]
        async with (
            connection(hub.url, team.api_key) as a1,
            connection(hub.url, team.api_key) as a2,
            connection(hub.url, team.api_key) as a3,
        ):
            answers = []
            for ws in (a1, a2, a3):
                await ws.send_str(hello(team.service_guid))
                answers.append(await first_answer(ws))
            assert [kind for kind, _ in answers] == ["welcome", "welcome", "close"]
            code, reason = answers[2][1]
            assert code == frames.TOO_MANY_CONNECTIONS
            assert "RECOGHUB_DIALOUT_CONNECTIONS_PER_SERVICE" in reason
            async with connection(hub.url, team.api_key) as b1:
                await b1.send_str(hello(second_guid))
                assert (await first_answer(b1))[0] == "welcome"
                # The provider holds 3: the next is refused before the upgrade.
                status, answer, body = await upgrade_answer(hub.url, bearer(team.api_key))
                assert status == 429 and "retry-after" in answer
                assert "RECOGHUB_DIALOUT_CONNECTIONS_PER_PROVIDER" in json.loads(body)["detail"]
                async with connection(hub.url, other.api_key) as o1:
                    await o1.send_str(hello(other.service_guid))
                    assert (await first_answer(o1))[0] == "welcome"
                    # The process holds 4.
                    status, _, body = await upgrade_answer(hub.url, bearer(other.api_key))
                    assert status == 429 and json.loads(body)["code"] == "too_many_connections"
                    assert "RECOGHUB_DIALOUT_CONNECTIONS_MAX" in json.loads(body)["detail"]
        # All closed: their places are free again.
        async with connection(hub.url, other.api_key) as o2:
            await o2.send_str(hello(other.service_guid))
            assert (await first_answer(o2))[0] == "welcome"


async def test_upgrades_are_rate_limited_per_key(tmp_path: Path) -> None:
    with hub_with(tmp_path, connect_rate=0.001, connect_burst=3) as hub:
        with httpx.Client(base_url=hub.url) as c:
            team = register_team(c, [])
            other = register_team(c, [], name="other")
        for _ in range(3):
            async with connection(hub.url, team.api_key) as ws:
                await ws.send_str(hello(team.service_guid))
                assert (await first_answer(ws))[0] == "welcome"
        status, answer, body = await upgrade_answer(hub.url, bearer(team.api_key))
        assert status == 429 and int(answer["retry-after"]) >= 1
        error = json.loads(body)
        assert error["code"] == "rate_limited" and "RECOGHUB_CONNECT_RATE" in error["detail"]
        async with connection(hub.url, other.api_key) as ws:  # another key is not held up
            await ws.send_str(hello(other.service_guid))
            assert (await first_answer(ws))[0] == "welcome"


async def test_upgrades_are_rate_limited_per_client_address(tmp_path: Path) -> None:
    limits = {"connect_address_rate": 0.001, "connect_address_burst": 4}
    with hub_with(tmp_path, **limits) as hub:
        statuses = [(await upgrade_answer(hub.url, bearer(f"rk_guess_{n}")))[0] for n in range(6)]
    # Four bad keys cost four authentications; then the address waits, whatever key.
    assert statuses == [401] * 4 + [429] * 2


async def test_the_welcome_names_no_host(sqlite_hub: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_hub.url) as c:
        team = register_team(c, [])
    async with connection(sqlite_hub.url, team.api_key) as ws:
        await ws.send_str(hello(team.service_guid))
        kind, welcome = await first_answer(ws)
    assert kind == "welcome" and "worker_id" not in welcome
    assert welcome["hub_id"] and socket.gethostname()[:40] not in json.dumps(welcome)


async def test_check_probes_at_most_16_connections(tmp_path: Path) -> None:
    settings = {"dialout_connections_per_service": 20, "connect_burst": 40, "check_rate": 0}
    with hub_with(tmp_path, **settings) as hub:
        with httpx.Client(base_url=hub.url) as c:
            team = register_team(c, [])
        async with aiohttp.ClientSession() as session:
            sockets = []
            for _ in range(20):
                ws = await session.ws_connect(
                    f"{hub.url}{frames.CONNECT_PATH}", headers=bearer(team.api_key)
                )
                await ws.send_str(hello(team.service_guid))
                assert (await first_answer(ws))[0] == "welcome"
                sockets.append(ws)
            answering = [asyncio.create_task(_answer_all(ws)) for ws in sockets]
            async with httpx.AsyncClient(base_url=hub.url, timeout=60) as c:
                r = await c.post(
                    f"/api/v1/services/{team.service_guid}/check", headers=bearer(team.api_key)
                )
            for task in answering:
                task.cancel()
            for ws in sockets:
                await ws.close()
    assert r.status_code == 200, r.text
    checked = r.json()["instances"]
    assert len(checked) == 16 and all(x["connected"] and x["format_ok"] for x in checked)


async def _answer_all(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for message in ws:
        if message.type == aiohttp.WSMsgType.BINARY:
            request_id = frames.parse_request(message.data).request_id
        elif message.type == aiohttp.WSMsgType.TEXT:
            request_id = json.loads(message.data).get("request_id")
            if request_id is None:
                continue
        else:
            return
        await ws.send_str(frames.result(request_id=request_id, status=200, body="cat:0.9"))


async def test_every_connection_shares_one_lookup_of_the_live_hubs() -> None:
    lookups: list[int] = []

    def lookup() -> list[dict[str, str]]:
        lookups.append(1)
        return [{"hub_id": "h", "url": "http://w:8001"}]

    cache = HubsCache(lookup, max_age_s=lambda: 3600.0)
    answers = await asyncio.gather(*(cache.get() for _ in range(50)))
    assert len(lookups) == 1 and all(a == answers[0] for a in answers)


async def test_a_deeply_nested_result_closes_1008_with_one_log_line(sqlite_hub: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_hub.url) as c:
        team = register_team(c, [])
    with hub_logs() as records:
        async with connection(sqlite_hub.url, team.api_key) as ws:
            await ws.send_str(hello(team.service_guid))
            assert (await first_answer(ws))[0] == "welcome"
            await ws.send_str('{"type": "result", "body": ' + "[" * 100_000)
            async with asyncio.timeout(30):
                closing = await ws.receive()
            code, reason = ws.close_code, str(closing.extra or "")
    assert code == frames.POLICY_VIOLATION and "nested too deeply" in reason
    nested = [r for r in records if "nested too deeply" in r.getMessage()]
    assert len(nested) == 1
    assert not [r for r in records if r.exc_info or "Traceback" in r.getMessage()]

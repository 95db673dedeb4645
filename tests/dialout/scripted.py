"""A hand-written dial-out recognizer for the tests: it says hello, then answers each
request with the next scripted message, so a test can send what a buggy or hostile
recognizer would."""

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import aiohttp

from gateway.dialout import frames

# Makes the text message answering one request (its id given).
Script = Callable[[str], str]


def result(status: int, body: str) -> Script:
    return lambda request_id: frames.result(request_id=request_id, status=status, body=body)


async def close_of(hub_url: str, token: str, hello: dict[str, Any]) -> tuple[int | None, str]:
    """The close code and reason the hub answers `hello` with (None: it welcomed it)."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"{hub_url}{frames.CONNECT_PATH}", headers={"Authorization": f"Bearer {token}"}
        ) as ws,
    ):
        await ws.send_str(json.dumps(hello))
        message = await ws.receive()
        if message.type == aiohttp.WSMsgType.TEXT:
            return None, message.data
        return ws.close_code, str(message.extra or "")


class ScriptedRecognizer:
    """Connected in a thread of its own until `stop()`; `welcome` once connected."""

    def __init__(self, hub_url: str, token: str, service_guid: str, scripts: list[Script]) -> None:
        self.url = f"{hub_url}{frames.CONNECT_PATH}"
        self.token = token
        self.service_guid = service_guid
        self.scripts = scripts
        self.requests: list[frames.Request] = []
        self.welcome: dict[str, Any] | None = None
        self.hubs: list[list[dict[str, str]]] = []  # every `hubs` message, in order
        self.connected = threading.Event()
        self.closed = threading.Event()
        self.close_code: int | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),))
        self._stop: asyncio.Event | None = None

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(self.url, headers={"Authorization": f"Bearer {self.token}"}) as ws,
        ):
            hello = frames.hello(
                service_guid=self.service_guid, instance="scripted", max_concurrency=4
            )
            await ws.send_str(hello)
            self.welcome = json.loads((await ws.receive()).data)
            self.connected.set()
            reader = asyncio.create_task(self._answer(ws))
            stopper = asyncio.create_task(self._stop.wait())
            await asyncio.wait([reader, stopper], return_when=asyncio.FIRST_COMPLETED)
            reader.cancel()
            stopper.cancel()
            self.close_code = ws.close_code
        self.closed.set()

    async def _answer(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                request = frames.parse_request(message.data)
                self.requests.append(request)
                script = self.scripts[min(len(self.requests), len(self.scripts)) - 1]
                await ws.send_str(script(request.request_id))
            elif message.type == aiohttp.WSMsgType.TEXT:
                ping = json.loads(message.data)
                if ping.get("type") == "hubs":
                    self.hubs.append(ping["hubs"])
                if ping.get("type") == "ping":
                    await ws.send_str(
                        frames.result(request_id=ping["request_id"], status=200, body="")
                    )

    def __enter__(self) -> "ScriptedRecognizer":
        self._thread.start()
        assert self.connected.wait(30), "the scripted recognizer did not connect"
        return self

    def __exit__(self, *_: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self._loop.close()


async def upgrade_answer(
    hub_url: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """The hub's HTTP answer to a WebSocket upgrade of the connect route, read raw:
    status, headers (lower-case names) and, for a refusal, the body."""
    host, port = hub_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    lines = [
        f"GET {frames.CONNECT_PATH} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        async with asyncio.timeout(30):
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            answer = {
                name.strip().lower(): value.strip()
                for name, _, value in (x.partition(":") for x in header_lines if x)
            }
            length = int(answer.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), answer, body
    finally:
        writer.close()

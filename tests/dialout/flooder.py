"""A hostile team's dial-out client (issue 17): it connects, says hello, then sends results
for requests it was never sent as fast as it can, and reconnects at once whenever the hub
closes it or refuses the upgrade. Used by tests/dialout/test_flood.py and
benchmarks/bench_flood.py; bounded in time and in reconnects."""

import asyncio
import contextlib
import threading
import time
from collections import Counter

import aiohttp

from gateway.dialout import frames

BATCH = 100  # results written before yielding to the event loop


class Flooder:
    """Floods in a thread of its own from `start()` until `stop()` or `max_s`."""

    def __init__(
        self,
        hub_url: str,
        api_key: str,
        service_guid: str,
        *,
        max_s: float = 120.0,
        max_attempts: int = 100_000,
        pause_s: float = 0.01,
    ) -> None:
        self.url = f"{hub_url.rstrip('/')}{frames.CONNECT_PATH}"
        self.api_key = api_key
        self.service_guid = service_guid
        self.max_s = max_s
        self.max_attempts = max_attempts
        self.pause_s = pause_s  # between reconnects
        self.attempts = 0
        self.welcomed = 0
        self.sent = 0
        self.refused: Counter[int] = Counter()  # HTTP status of refused upgrades
        self.closes: Counter[int | None] = Counter()  # close code of welcomed connections
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> "Flooder":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def __enter__(self) -> "Flooder":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    async def _run(self) -> None:
        deadline = time.monotonic() + self.max_s
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with aiohttp.ClientSession() as session:
            while (
                not self._stop.is_set()
                and time.monotonic() < deadline
                and self.attempts < self.max_attempts
            ):
                self.attempts += 1
                try:
                    async with session.ws_connect(self.url, headers=headers) as ws:
                        await self._flood(ws)
                except aiohttp.WSServerHandshakeError as exc:
                    self.refused[exc.status] += 1
                except (aiohttp.ClientError, OSError, TimeoutError):
                    self.refused[0] += 1
                await asyncio.sleep(self.pause_s)

    async def _flood(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_str(
            frames.hello(service_guid=self.service_guid, instance="flood", max_concurrency=8)
        )
        async with asyncio.timeout(30):
            first = await ws.receive()
        if first.type != aiohttp.WSMsgType.TEXT:
            self.closes[ws.close_code] += 1
            return
        self.welcomed += 1
        closed = asyncio.create_task(self._until_closed(ws))
        number = 0
        try:
            while not closed.done() and not self._stop.is_set():
                for _ in range(BATCH):
                    number += 1
                    await ws.send_str(
                        frames.result(request_id=f"flood-{number}", status=200, body="cat:1")
                    )
                    self.sent += 1
                await asyncio.sleep(0)
        except (ConnectionError, aiohttp.ClientError, RuntimeError):
            pass  # the hub closed it under us
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await closed
        closed.cancel()
        self.closes[ws.close_code] += 1

    async def _until_closed(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for _ in ws:  # the hub's pings and hubs messages; ends at its close
            pass

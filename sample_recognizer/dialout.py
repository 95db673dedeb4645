"""`recoghub-recognizer --connect`: the sample recognizer connected out to the hub (SPEC §10).

For a team behind NAT or a firewall: no port is opened; the recognizer opens a WebSocket
to `{hub}/api/v1/connect` and answers the requests the hub sends over it, with the same
code as the HTTP recognizer (`Recognizer.answer`: signature, backend, result string),
logging every answer other than 200 the same way.

It keeps one connection to every dispatching hub process the hub names (the `welcome`
and `hubs` messages), and reconnects each with back-off (1 s doubling to 30 s,
jittered) whenever it drops. A key the hub refuses (HTTP 401 before the upgrade) or a
hello it refuses for good (another provider's service, unknown service) stops the
recognizer with the hub's reason.
"""

import asyncio
import contextlib
import logging
import os
import random
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from gateway.dialout import frames
from sample_recognizer.app import Recognizer, Refusal, log_refusal

log = logging.getLogger("sample_recognizer")

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
WELCOME_TIMEOUT_S = 30.0
# Request frames carry whole images; the hub's own limit on images is 8 MiB by default.
MAX_FRAME_BYTES = 64 * 1024 * 1024
FATAL = {
    frames.BAD_KEY: "bad API key",
    frames.OTHER_PROVIDER: "another provider's service",
    frames.UNKNOWN_SERVICE: "unknown service",
    frames.BAD_HELLO: "hello refused",
}
WHAT = "recognize over the hub connection"


class Refused(RuntimeError):
    """The hub refused the hello for good; the message is its reason."""


def connect_url(hub: str) -> str:
    """`{hub}/api/v1/connect` as a ws:// or wss:// URL; raises ValueError for a bad URL."""
    url = URL(hub.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(url.scheme)
    if scheme is None or not url.host:
        raise ValueError(f"the hub URL must be http(s)://host[:port], not {hub!r}")
    path = url.path.rstrip("/")
    if path.endswith(frames.CONNECT_PATH):
        path = path[: -len(frames.CONNECT_PATH)]
    return str(url.with_scheme(scheme).with_path(path + frames.CONNECT_PATH).with_query(None))


def backoff(attempt: int) -> float:
    """Seconds before reconnect `attempt` (0-based): 1 s doubling to 30 s, jittered."""
    base = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * float(2 ** min(attempt, 10)))
    return base * random.uniform(0.5, 1.0)


@dataclass
class _Link:
    url: str
    seed: bool
    hub_id: str | None = None  # the opaque name of the process it is connected to
    connected: bool = False
    task: "asyncio.Task[None] | None" = field(default=None, repr=False)


class DialoutClient:
    """Keeps the recognizer connected to every dispatching process of one hub."""

    def __init__(
        self,
        *,
        hub: str,
        service_guid: str,
        api_key: str,
        recognizer: Recognizer,
        instance: str | None = None,
    ) -> None:
        self.seed_url = connect_url(hub)
        self.service_guid = service_guid
        self.api_key = api_key
        self.recognizer = recognizer
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}"
        self._links: dict[str, _Link] = {}
        self._session: aiohttp.ClientSession | None = None
        self._failed: BaseException | None = None
        self._stop = asyncio.Event()

    @property
    def connected(self) -> int:
        """How many hub processes this recognizer is connected to now."""
        return sum(link.connected for link in self._links.values())

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Serve until `stop` is set. Raises Refused when the hub refuses the hello."""
        self._stop = stop or asyncio.Event()
        async with aiohttp.ClientSession() as session:
            self._session = session
            self._open(self.seed_url, seed=True)
            stopper = asyncio.create_task(self._stop.wait())
            try:
                await stopper
            finally:
                stopper.cancel()
                for link in list(self._links.values()):
                    if link.task is not None:
                        link.task.cancel()
                tasks = [x.task for x in self._links.values() if x.task is not None]
                await asyncio.gather(*tasks, return_exceptions=True)
        if self._failed is not None:
            raise self._failed

    def _open(self, url: str, *, seed: bool) -> None:
        link = _Link(url, seed)
        self._links[url] = link
        link.task = asyncio.create_task(self._keep(link), name=f"dialout-{url}")

    def _learn(self, hubs: Any) -> None:
        """Connect to every dispatching process named that is not connected yet; forget
        the ones no longer named that are down."""
        if not isinstance(hubs, list):
            return
        known = {x.hub_id for x in self._links.values() if x.hub_id}
        named: set[str] = set()
        for hub in hubs:
            if not isinstance(hub, dict) or not isinstance(hub.get("url"), str):
                continue
            try:
                url = connect_url(hub["url"])
            except ValueError:
                continue
            named.add(url)
            if url not in self._links and hub.get("hub_id") not in known:
                log.info("the hub names another dispatching process at %s: connecting", url)
                self._open(url, seed=False)
        for url, link in list(self._links.items()):
            if not link.seed and url not in named and not link.connected and link.task:
                link.task.cancel()
                del self._links[url]

    async def _keep(self, link: _Link) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                if await self._connect_once(link):
                    attempt = 0
            except Refused as refused:
                if link.seed:
                    self._failed = refused
                    self._stop.set()
                    return
                log.warning("%s refused the connection: %s", link.url, refused)
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                log.warning("connection to %s failed: %s", link.url, _describe(exc))
            finally:
                link.connected = False
            delay = backoff(attempt)
            attempt += 1
            log.info("reconnecting to %s in %.1fs", link.url, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()

    async def _connect_once(self, link: _Link) -> bool:
        """One connection, until it drops; True when the hub had welcomed it."""
        assert self._session is not None
        try:
            ws = await self._session.ws_connect(
                link.url,
                headers={"Authorization": f"Bearer {self.api_key}"},
                heartbeat=frames.PING_INTERVAL_S,
                max_msg_size=MAX_FRAME_BYTES,
            )
        except aiohttp.WSServerHandshakeError as exc:
            # The hub decides the key before the upgrade: 401 is for good; 429 (too
            # many connections or reconnects) passes with the back-off.
            if exc.status == 401:
                raise Refused(
                    "bad API key (401): give the provider's key (--key or RECOGHUB_API_KEY)"
                ) from None
            raise
        async with ws:
            await ws.send_str(
                frames.hello(
                    service_guid=self.service_guid,
                    instance=self.instance,
                    max_concurrency=self.recognizer.config.max_concurrency,
                )
            )
            async with asyncio.timeout(WELCOME_TIMEOUT_S):
                first = await ws.receive()
            if first.type != aiohttp.WSMsgType.TEXT:
                code = first.data if first.type == aiohttp.WSMsgType.CLOSE else ws.close_code
                reason = first.extra if isinstance(first.extra, str) else ""
                if code in FATAL:
                    raise Refused(f"{FATAL[code]} ({code}): {reason}")
                raise ConnectionError(f"closed before the welcome ({code}): {reason or '-'}")
            welcome = frames.parse_hub_message(first.data)
            if welcome.get("type") != "welcome":
                raise ValueError(f"expected the welcome, got {str(first.data)[:80]}")
            link.hub_id = welcome.get("hub_id")
            link.connected = True
            log.info(
                "connected to %s as %s, up to %s requests at once",
                link.url,
                welcome.get("instance_id"),
                welcome.get("max_concurrency"),
            )
            self._learn(welcome.get("hubs"))
            await self._serve(ws)
            log.warning("connection to %s closed (%s)", link.url, ws.close_code)
            return True

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        answering: set[asyncio.Task[None]] = set()
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    task = asyncio.create_task(self._answer(ws, message.data))
                elif message.type == aiohttp.WSMsgType.TEXT:
                    hub_message = frames.parse_hub_message(message.data)
                    if hub_message.get("type") == "hubs":
                        self._learn(hub_message.get("hubs"))
                        continue
                    if hub_message.get("type") != "ping":
                        continue
                    task = asyncio.create_task(self._pong(ws, hub_message.get("request_id")))
                else:
                    break
                answering.add(task)
                task.add_done_callback(answering.discard)
        finally:
            for task in answering:
                task.cancel()

    async def _pong(self, ws: aiohttp.ClientWebSocketResponse, request_id: Any) -> None:
        if isinstance(request_id, str):
            body = f'{{"status": "ok", "backend": "{self.recognizer.backend.name}"}}'
            await ws.send_str(frames.result(request_id=request_id, status=200, body=body))

    async def _answer(self, ws: aiohttp.ClientWebSocketResponse, frame: bytes) -> None:
        try:
            request = frames.parse_request(frame)
        except ValueError as exc:
            log.warning("ignored a request frame the hub sent: %s", exc)
            return
        try:
            answer = await self.recognizer.answer(
                request.image,
                request_id=request.request_id,
                timestamp=request.timestamp,
                signature=request.signature,
            )
            status = 200
        except Refusal as refusal:
            log_refusal(request.request_id, refusal.status, WHAT, refusal.reason, refusal.todo)
            status, answer = refusal.status, refusal.reason
        if not ws.closed:
            await ws.send_str(
                frames.result(request_id=request.request_id, status=status, body=answer)
            )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class BackgroundDialout:
    """A DialoutClient on its own event loop in a thread (the demo's, the tests')."""

    def __init__(self, client: DialoutClient) -> None:
        self.client = client
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()
            await self.client.run(self._stop)

        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:  # kept for the caller to see
            self.error = exc
        finally:
            self._loop.close()

    def start(self) -> "BackgroundDialout":
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def __enter__(self) -> "BackgroundDialout":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

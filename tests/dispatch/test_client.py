"""The hub's HTTP client itself, on each transport: what a recognizer sees of it."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import get_args

import pytest

from gateway.config import Settings
from gateway.dispatch.client import SendFailed, make_client_session
from tests.builders import LOOPBACK_ALLOWED

CLIENTS = get_args(Settings.model_fields["http_client"].annotation)
# pyreqwest 0.15.1 lets a cancelled request run on to its own timeout (why it is not the
# default, README "HTTP clients"); this fails loudly once it aborts.
RUNS_ON = pytest.mark.xfail(strict=True, reason="pyreqwest 0.15.1 does not abort on cancel")
SETTINGS = Settings(database_url="sqlite://", endpoint_allow=LOOPBACK_ALLOWED)


@dataclass
class SilentRecognizer:
    """A raw TCP server that reads a request, answers `head` (possibly nothing, or the
    start of an answer) and then waits, noting when the client closes its connection."""

    head: bytes
    asked: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(self.head)
        await writer.drain()
        self.asked.set()
        with contextlib.suppress(ConnectionError):
            await reader.read()  # b"" once the client closed its side
        self.closed.set()
        writer.close()


@contextlib.asynccontextmanager
async def silent_recognizer(head: bytes) -> AsyncIterator[tuple[SilentRecognizer, str]]:
    recognizer = SilentRecognizer(head)
    server = await asyncio.start_server(recognizer.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield recognizer, f"http://127.0.0.1:{port}/recognize"
    finally:
        server.close()
        for writer in recognizer.writers:
            writer.close()
        await asyncio.sleep(0)  # the handlers see their connections closed and end


@pytest.mark.parametrize(
    "head",
    [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nred:"],
    ids=["before-the-answer", "while-the-body-is-read"],
)
@pytest.mark.parametrize(
    "http_client",
    [pytest.param(c, marks=RUNS_ON) if c == "pyreqwest" else c for c in CLIENTS],
)
async def test_a_cancelled_request_closes_its_connection(http_client: str, head: bytes) -> None:
    """A request the hub gives up on (a run's deadline, shutdown) stops occupying the
    team's recognizer: its connection closes at once, not at the request's timeout."""
    http = make_client_session(SETTINGS.model_copy(update={"http_client": http_client}))
    try:
        async with silent_recognizer(head) as (recognizer, url):
            request = asyncio.create_task(
                http.fetch("POST", url, body=b"img", timeout_s=60.0, limit=65536, preview=200)
            )
            await asyncio.wait_for(recognizer.asked.wait(), 10.0)
            await asyncio.sleep(0.05)  # the client is waiting for the (rest of the) answer
            request.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await request
            # Far below the 60 s the request would otherwise run.
            await asyncio.wait_for(recognizer.closed.wait(), 5.0)
    finally:
        await http.close()


@pytest.mark.parametrize("http_client", CLIENTS)
@pytest.mark.parametrize("spelling", ["localhost", "LOCALHOST", "LocalHost"])
async def test_a_name_reaches_only_the_address_it_was_checked_at(
    http_client: str, spelling: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub's resolver says the name is 127.0.0.2 (allowed, nothing listening); the
    system's says 127.0.0.1, where the recognizer listens but the policy refuses. A Rust
    client pinned to the name the hub resolved never reaches 127.0.0.1, whatever the
    name's spelling (a spelling its own resolver looked up past the pin would)."""

    async def resolve(host: str, *args: object, **kwargs: object) -> list[object]:
        assert host.lower() == "localhost"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", 0))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolve)
    settings = SETTINGS.model_copy(
        update={"http_client": http_client, "endpoint_allow": "127.0.0.2/32"}
    )
    http = make_client_session(settings)
    try:
        async with silent_recognizer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") as (
            recognizer,
            url,
        ):
            with pytest.raises(SendFailed):
                await http.fetch(
                    "GET", url.replace("127.0.0.1", spelling), timeout_s=5.0, limit=65536, preview=0
                )
            assert not recognizer.asked.is_set()
    finally:
        await http.close()


async def test_wreq_refuses_a_host_it_would_read_as_another_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """wreq decodes `ex%41mple.test` into a name the hub did not resolve: refused before
    any lookup."""

    async def no_lookup(*args: object, **kwargs: object) -> list[object]:
        raise AssertionError("resolved")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_lookup)
    http = make_client_session(SETTINGS.model_copy(update={"http_client": "wreq"}))
    try:
        with pytest.raises(SendFailed, match="may hold only letters"):
            await http.fetch(
                "GET", "http://ex%41mple.test:9/ping", timeout_s=5.0, limit=65536, preview=0
            )
    finally:
        await http.close()

"""The connect route of a standalone worker (`recoghub worker --listen HOST:PORT`).

A worker dispatches to a dial-out service only through its own connections, so every
dispatching process accepts them (SPEC §10). The worker serves that one route with
uvicorn on its own event loop; the worker, not uvicorn, handles SIGTERM and SIGINT, so
that requests in flight over these connections finish before the listener closes.
"""

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from gateway.dialout.frames import uvicorn_ws_options
from gateway.dialout.routes import DialoutHost
from gateway.dialout.routes import router as dialout_router
from gateway.listening import listener_options


class ListenError(ValueError):
    """A --listen or --public-url that cannot work; the message says what to change."""


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` for IPv6); raises ListenError."""
    host, colon, port = value.rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ListenError(f"--listen {value!r} should be HOST:PORT, e.g. 0.0.0.0:8001")
    return host, int(port)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; raises ListenError when the address is taken or not ours."""
    try:
        return socket.create_server(
            (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET
        )
    except OSError as exc:
        raise ListenError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another --listen"
        ) from None


def public_url_for(host: str, port: int, given: str | None) -> str:
    """The URL recognizers are told: `given`, or http://HOST:PORT for a concrete host."""
    if given:
        return given.rstrip("/")
    if host in ("0.0.0.0", "::"):
        raise ListenError(
            f"--listen {host}:{port} names every address: give --public-url, the URL "
            "recognizers reach this worker at (e.g. http://worker-2.example.org:8001)"
        )
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the worker owns SIGTERM and SIGINT


def listener_app(host: DialoutHost) -> FastAPI:
    """An app with the connect route only."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.dialout = host
    app.include_router(dialout_router, prefix="/api/v1")
    return app


async def serve_connect_route(host: DialoutHost, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve the connect route on `sock` until `stop` is set, then close its connections."""
    config = uvicorn.Config(
        listener_app(host),
        lifespan="off",
        log_level="warning",
        timeout_graceful_shutdown=2,
        **uvicorn_ws_options(),
        **listener_options(host.settings),
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopping.cancel()
        await serving

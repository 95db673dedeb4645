"""The connect route of a standalone worker (`recoghub worker --listen HOST:PORT`).

A worker dispatches to a dial-out service only through its own connections, so every
dispatching process accepts them (SPEC §10). The worker serves that one route with
uvicorn on its own event loop; the worker, not uvicorn, handles SIGTERM and SIGINT, so
that requests in flight over these connections finish before the listener closes.
"""

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import FastAPI

from gateway.dialout.bridge import ChildBridge
from gateway.dialout.frames import uvicorn_ws_options
from gateway.dialout.handover import ServeLink, receive_connections
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


async def serve_connect_route(
    host: DialoutHost,
    sock: socket.socket | None,
    stop: asyncio.Event,
    *,
    handed: ServeLink | None = None,
    handed_closed: Callable[[], None] = lambda: None,
) -> None:
    """Serve the connect route on `sock` until `stop` is set, then close its connections.
    With `handed`, also serve the connections `recoghub serve`'s API process hands over
    (gateway.dialout.handover) and relay its requests through them (gateway.dialout.
    bridge); `handed_closed` is called when that process is gone."""
    config = uvicorn.Config(
        listener_app(host),
        lifespan="off",
        log_level="warning",
        timeout_graceful_shutdown=2,
        **uvicorn_ws_options(),
        **listener_options(host.settings),
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock] if sock is not None else []))
    stopping = asyncio.create_task(stop.wait())
    unhook = None
    bridge = None
    try:
        if handed is not None:
            while not server.started and not serving.done():
                await asyncio.sleep(0.01)
            unhook = receive_connections(handed.channel, _accepter(server), handed_closed)
            relay = ChildBridge(handed.bridge, host.connections, host.settings.request_timeout_s)
            bridge = asyncio.create_task(relay.run())
        await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        if unhook is not None:
            unhook()
        if bridge is not None:
            bridge.cancel()
        server.should_exit = True
        stopping.cancel()
        await serving


def _accepter(server: uvicorn.Server) -> Callable[[socket.socket, bytes], None]:
    """Take a connection another process accepted: as if `server` had accepted it, then
    the request head that process read from it."""
    loop = asyncio.get_running_loop()
    config = server.config

    def protocol() -> asyncio.Protocol:
        return config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=server.server_state, app_state=server.lifespan.state
        )

    def accept(sock: socket.socket, head: bytes) -> None:
        async def connected() -> None:
            try:
                transport, made = await loop.connect_accepted_socket(protocol, sock)
            except OSError:
                sock.close()
                return
            # Closed at once by the listener's caps (gateway.listening): nothing to read.
            if not transport.is_closing():
                made.data_received(head)

        task = loop.create_task(connected())
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    return accept


_pending: set[asyncio.Task[None]] = set()

"""Every listener has limits (SPEC §9, gateway.listening): a request head has a deadline
and a size, and connections still sending one, and connections in all, are capped per
listener. Real uvicorn on 127.0.0.1 port 0, configured as the hub configures its own."""

import json
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from fastapi import FastAPI, Request, Response, WebSocket, WebSocketDisconnect
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from gateway.cli.background import BackgroundServer
from gateway.config import Settings
from gateway.listening import MAX_HEAD_BYTES
from tests.listener_probes import (
    OPEN_HEAD,
    answer,
    answered,
    closed_by_server,
    connect,
    poll,
    port_of,
)


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"bytes": size}

    @app.post("/refuse")
    def refuse() -> Response:
        # Answered before the body is read, as the hub's body guard answers 413.
        return Response(status_code=413)

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect:
            pass

    return app


def serve(**limits: object) -> BackgroundServer:
    return BackgroundServer(echo_app(), settings=Settings(**limits)).start()


@pytest.fixture
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    """A listener whose head timeout is 1 s (other limits: indirect parametrization)."""
    limits = {"header_timeout_s": 1.0, **getattr(request, "param", {})}
    server = serve(**limits)
    try:
        yield port_of(server.url)
    finally:
        server.stop()


# --- the head deadline -------------------------------------------------------------------


def test_a_head_sent_one_byte_a_second_is_closed(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(OPEN_HEAD)
        # uvicorn alone keeps this connection as long as the bytes keep coming.
        assert closed_by_server(sock, trickle=True, bound_s=30)


def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    with connect(port) as sock:
        assert closed_by_server(sock, trickle=False, bound_s=30)


def test_a_kept_alive_connection_trickling_its_next_head_is_closed(port: int) -> None:
    with connect(port) as sock:
        sock.settimeout(10)
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: hub\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        # Any byte cancels uvicorn's keep-alive timer; the head deadline still runs.
        sock.sendall(OPEN_HEAD)
        assert closed_by_server(sock, trickle=True, bound_s=30)


def test_an_idle_kept_alive_connection_is_closed(port: int) -> None:
    with connect(port) as sock:
        sock.settimeout(10)
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: hub\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert closed_by_server(sock, trickle=False, bound_s=30)


def test_a_slow_upload_body_is_not_cut_by_the_head_deadline(port: int) -> None:
    """The body of a request may take longer than the head deadline: 2 MiB in 8 pieces
    half a second apart, 3.5 s in all against a 1 s deadline."""
    piece = b"x" * (256 * 1024)
    with connect(port) as sock:
        sock.settimeout(30)
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n"
            b"Content-Type: application/octet-stream\r\n"
            + f"Content-Length: {8 * len(piece)}\r\n\r\n".encode()
        )
        for _ in range(8):
            time.sleep(0.5)
            sock.sendall(piece)
        received = b""
        for _ in range(100):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), received[:200]
    assert json.loads(body) == {"bytes": 8 * len(piece)}


def test_the_rest_of_a_body_answered_early_is_no_head(port: int) -> None:
    """An answer sent before its body arrived (the hub's 413): the 2 MiB still coming on
    the connection are the old request's, not a head over the size limit; the next
    request on it is answered. (They were counted as a head: a 431 with no nosniff was
    queued on the connection and a client's next request read it as its answer.)"""
    with connect(port) as sock:
        sock.settimeout(10)
        sock.sendall(
            b"POST /refuse HTTP/1.1\r\nHost: hub\r\n"
            + f"Content-Length: {2 * 1024 * 1024}\r\n\r\n".encode()
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")
        sock.sendall(b"x" * (2 * 1024 * 1024))
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n")
        received = b""
        for _ in range(100):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received[:200]


def test_the_rest_of_a_body_answered_early_has_the_head_deadline(port: int) -> None:
    """Its bytes are no head, but they cannot hold the connection open either: trickled
    after the answer, the connection is closed by the deadline."""
    with connect(port) as sock:
        sock.settimeout(10)
        sock.sendall(
            b"POST /refuse HTTP/1.1\r\nHost: hub\r\n"
            + f"Content-Length: {2 * 1024 * 1024}\r\n\r\n".encode()
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")
        sock.settimeout(1.0)
        assert closed_by_server(sock, trickle=True, bound_s=30)


def test_a_websocket_outlives_the_head_deadline(port: int) -> None:
    with ws_connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
        time.sleep(2.5)  # past the 1 s deadline: the head arrived, the clock stopped
        ws.send("still here")
        assert ws.recv(timeout=10) == "still here"


# --- the head size -----------------------------------------------------------------------


def test_a_head_over_the_size_limit_is_answered_431(port: int) -> None:
    huge = b"GET /ping HTTP/1.1\r\nHost: hub\r\nX-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n"
    refused = answer(port, huge)
    assert refused.startswith(b"HTTP/1.1 431")
    assert b"\r\nx-content-type-options: nosniff\r\n" in refused  # as every answer
    # Never finished: the bound holds while the header value is still arriving.
    unfinished = b"GET /ping HTTP/1.1\r\nHost: hub\r\nX-Big: " + b"a" * (2 * MAX_HEAD_BYTES)
    assert answer(port, unfinished).startswith(b"HTTP/1.1 431")
    assert answered(port)


def test_a_head_that_does_not_parse_is_answered_400_with_nosniff(port: int) -> None:
    refused = answer(port, b"GET /ping HTTP/1.1\r\nHost hub\r\n\r\n")
    assert refused.startswith(b"HTTP/1.1 400")
    assert b"\r\nx-content-type-options: nosniff\r\n" in refused
    assert answered(port)


# --- the caps ----------------------------------------------------------------------------


def hold_open(stack: ExitStack, port: int, count: int) -> list[socket.socket]:
    return [stack.enter_context(connect(port)) for _ in range(count)]


@pytest.mark.parametrize(
    "port", [{"header_timeout_s": 3600, "listen_max_handshakes": 3}], indirect=True
)
def test_past_the_handshake_cap_new_connections_are_closed_until_others_close(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    with ExitStack() as stack, caplog.at_level(logging.WARNING, logger="gateway.listening"):
        held = hold_open(stack, port, 3)
        # Closed at once, before it is read: no answer, not even an error status.
        assert [answer(port) for _ in range(5)] == [b""] * 5
        # Counted, not logged one line each (a flood would flood the log).
        refusals = [r.getMessage() for r in caplog.records if r.name == "gateway.listening"]
        assert len(refusals) == 1 and "RECOGHUB_LISTEN_MAX_HANDSHAKES" in refusals[0], refusals
        held[0].close()
        poll(lambda: answered(port), "a request once a half-open connection closed")
        # The slot freed is one slot: the listener is full again with a new half-open one.
        stack.enter_context(connect(port))
        poll(lambda: answer(port) == b"", "the cap reached again")


@pytest.mark.parametrize(
    "port", [{"header_timeout_s": 1.0, "listen_max_handshakes": 3}], indirect=True
)
def test_past_the_handshake_cap_a_request_gets_through_once_the_others_time_out(port: int) -> None:
    with ExitStack() as stack:
        held = hold_open(stack, port, 3)
        poll(lambda: answered(port), "a request once the half-open connections timed out")
        assert all(closed_by_server(sock, trickle=False, bound_s=30) for sock in held)


def ws_open(port: int, stack: ExitStack) -> ClientConnection:
    return stack.enter_context(ws_connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10))


@pytest.mark.parametrize("port", [{"listen_max_connections": 3}], indirect=True)
def test_past_the_connection_cap_new_connections_are_closed_until_one_closes(port: int) -> None:
    with ExitStack() as stack:
        sockets = [ws_open(port, stack) for _ in range(3)]
        assert answer(port) == b""
        with pytest.raises((WebSocketException, OSError)):
            ws_connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10)
        sockets[0].close()
        poll(lambda: answered(port), "a request once a WebSocket closed")
        sockets[1].send("the others are served")
        assert sockets[1].recv(timeout=10) == "the others are served"


def test_each_listener_has_its_own_caps() -> None:
    with ExitStack() as stack:
        full = serve(listen_max_handshakes=2, header_timeout_s=3600)
        stack.callback(full.stop)
        other = serve(listen_max_handshakes=2, header_timeout_s=3600)
        stack.callback(other.stop)
        hold_open(stack, port_of(full.url), 2)
        assert answer(port_of(full.url)) == b""
        assert answered(port_of(other.url))

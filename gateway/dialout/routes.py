"""`GET /api/v1/connect`: the WebSocket a dial-out recognizer opens (SPEC §10).

The route admits the hello (close codes 4401/4403/4404/4409 otherwise), welcomes the
recognizer with its instance id, its granted concurrency and the live dispatching
processes, registers the connection as an instance of its service, then reads results
until the connection ends. Requests are sent by the dispatcher (`Connection.request`).
A `hubs` message repeats the list of dispatching processes every `HUBS_EVERY_S`.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import APIRouter, WebSocket
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from gateway.config import Settings
from gateway.db import utcnow
from gateway.dialout import frames
from gateway.dialout.connections import Connection, Connections, new_instance_id
from gateway.dialout.frames import FrameError
from gateway.dialout.service import Admitted, Refused, admit, live_hubs

log = logging.getLogger("recoghub.dialout")
router = APIRouter(tags=["dial-out"])

HELLO_TIMEOUT_S = 10.0
HUBS_EVERY_S = 10.0


@dataclass
class DialoutHost:
    """What the connect route of one hub process needs: its database, its registry of
    connections (the dispatcher's), and the id of its dispatching worker, if any."""

    settings: Settings
    sessions: sessionmaker[Session]
    connections: Connections
    worker_id: Callable[[], str | None] = field(default=lambda: None)


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _hubs(host: DialoutHost) -> list[dict[str, str]]:
    with host.sessions() as session:
        since = utcnow() - timedelta(seconds=host.settings.lease_s)
        return live_hubs(session, live_since=since)


def _admit(host: DialoutHost, token: str | None, hello: frames.Hello) -> Admitted:
    with host.sessions() as session:
        return admit(session, token=token, hello=hello, admin_token=host.settings.admin_token)


@router.websocket("/connect")
async def connect(websocket: WebSocket) -> None:
    """A dial-out recognizer's connection; see SPEC §10 for the messages."""
    host: DialoutHost = websocket.app.state.dialout
    await websocket.accept()
    try:
        async with asyncio.timeout(HELLO_TIMEOUT_S):
            text = await websocket.receive_text()
        hello = frames.parse_hello(text)
    except (TimeoutError, KeyError, WebSocketDisconnect, ValueError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "send the hello message first"
        with contextlib.suppress(Exception):
            await websocket.close(frames.BAD_HELLO, frames.close_reason(reason))
        return
    try:
        admitted = await run_in_threadpool(_admit, host, _bearer(websocket), hello)
    except Refused as refused:
        log.info("dial-out hello for %s refused: %s", hello.service_guid, refused.reason)
        await websocket.close(refused.code, refused.reason)
        return

    async def send(message: bytes | str) -> None:
        if isinstance(message, bytes):
            await websocket.send_bytes(message)
        else:
            await websocket.send_text(message)

    connection = Connection(
        instance_id=new_instance_id(hello.instance),
        service_guid=admitted.service_guid,
        granted=admitted.granted,
        send=send,
    )
    hubs = await run_in_threadpool(_hubs, host)
    await websocket.send_json(
        {
            "type": "welcome",
            "instance_id": connection.instance_id,
            "max_concurrency": connection.granted,
            "worker_id": host.worker_id(),
            "hubs": hubs,
        }
    )
    host.connections.add(connection)
    log.info("%s connected for service %s", connection.label, connection.service_guid)
    announcer = asyncio.create_task(_announce(host, websocket, hubs))
    reason = "the recognizer closed the connection"
    try:
        reason = await _read_results(websocket, connection)
    finally:
        announcer.cancel()
        host.connections.remove(connection, reason)
        log.info("%s disconnected: %s", connection.label, reason)


async def _read_results(websocket: WebSocket, connection: Connection) -> str:
    """Hand every result to its request until the connection ends; returns why it ended."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return f"closed ({message.get('code', 1000)})"
        text = message.get("text")
        if text is None:
            return await _violation(websocket, "send results as text messages")
        try:
            reply = frames.parse_reply(text)
        except FrameError as bad:
            if bad.request_id is None:
                return await _violation(websocket, bad.error.detail)
            connection.fail(bad.request_id, bad.error)
            continue
        connection.answer(reply)


async def _violation(websocket: WebSocket, reason: str) -> str:
    """Close a connection whose message names no request; its requests fail."""
    with contextlib.suppress(Exception):
        await websocket.close(frames.POLICY_VIOLATION, frames.close_reason(reason))
    return f"protocol violation: {reason}"


async def _announce(host: DialoutHost, websocket: WebSocket, told: list[dict[str, str]]) -> None:
    """Tell the recognizer when the live dispatching processes change."""
    while True:
        await asyncio.sleep(HUBS_EVERY_S)
        try:
            hubs = await run_in_threadpool(_hubs, host)
            if hubs != told:
                await websocket.send_json({"type": "hubs", "hubs": hubs})
                told = hubs
        except Exception as exc:  # the connection is closing, or the database is away
            log.debug("could not update the hubs of a connection: %s", exc)


__all__ = ["DialoutHost", "connect", "router"]

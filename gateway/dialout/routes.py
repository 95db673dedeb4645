"""`GET /api/v1/connect`: the WebSocket a dial-out recognizer opens (SPEC §10).

The route decides the key and the process's caps before it upgrades (HTTP 401/429
otherwise), admits the hello (close codes 4403/4404/4409/4429 otherwise), welcomes the
recognizer with its instance id, its granted concurrency and the live dispatching
processes, registers the connection as an instance of its service, then reads results
within the connection's budget (`limits.Reader`) until the connection ends. Requests
are sent by the dispatcher (`Connection.request`). A `hubs` message repeats the list of
dispatching processes when it changes (looked up every `HUBS_EVERY_S`, once for all).
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from gateway.auth import Principal
from gateway.config import Settings
from gateway.db import utcnow
from gateway.dialout import frames
from gateway.dialout.connections import Connection, Connections, new_instance_id
from gateway.dialout.frames import FrameError, NestingError
from gateway.dialout.hubs import HubsCache
from gateway.dialout.limits import CapReached, ConnectLimits, Reader
from gateway.dialout.service import (
    Admitted,
    Refused,
    admit,
    authenticate_key,
    hub_id,
    live_hubs,
)
from gateway.errors import HubError

log = logging.getLogger("recoghub.dialout")
router = APIRouter(tags=["dial-out"])

HELLO_TIMEOUT_S = 10.0
HUBS_EVERY_S = 10.0


@dataclass
class DialoutHost:
    """What the connect route of one hub process needs: its database, its registry of
    connections (the dispatcher's), and the id of its dispatching worker, if any; the
    process's connection limits and its shared lookup of the live hubs come with it."""

    settings: Settings
    sessions: sessionmaker[Session]
    connections: Connections
    worker_id: Callable[[], str | None] = field(default=lambda: None)
    limits: ConnectLimits = field(init=False)
    hubs: HubsCache = field(init=False)

    def __post_init__(self) -> None:
        self.limits = ConnectLimits(self.settings)
        self.hubs = HubsCache(self._live_hubs, max_age_s=lambda: HUBS_EVERY_S)

    def _live_hubs(self) -> list[dict[str, str]]:
        with self.sessions() as session:
            since = utcnow() - timedelta(seconds=self.settings.lease_s)
            return live_hubs(session, live_since=since)


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _authenticate(host: DialoutHost, token: str | None) -> Principal:
    with host.sessions() as session:
        return authenticate_key(session, token=token, admin_token=host.settings.admin_token)


def _admit(host: DialoutHost, principal: Principal, hello: frames.Hello) -> Admitted:
    with host.sessions() as session:
        return admit(session, principal=principal, hello=hello)


async def _deny(websocket: WebSocket, error: HubError) -> None:
    """Refuse the upgrade with the API's JSON error (uvicorn's denial response)."""
    log.info("dial-out connection from %s refused: %s", _client(websocket), error.detail)
    await websocket.send_denial_response(
        JSONResponse(
            {"detail": error.detail, "code": error.code},
            status_code=error.status,
            headers=error.headers,
        )
    )


def _client(websocket: WebSocket) -> str | None:
    return websocket.client.host if websocket.client is not None else None


@router.websocket("/connect")
async def connect(websocket: WebSocket) -> None:
    """A dial-out recognizer's connection; see SPEC §10 for the messages.

    Before the upgrade: the client address's and the key's rate of upgrades (429), the
    key (401), the process's and the provider's caps (429), each an HTTP answer with
    the API's JSON error. Nothing is allocated for a connection refused there."""
    host: DialoutHost = websocket.app.state.dialout
    token = _bearer(websocket)
    try:
        host.limits.take_upgrade(address=_client(websocket), token=token)
        principal = await run_in_threadpool(_authenticate, host, token)
        held = host.limits.hold_process(principal)
    except HubError as error:
        await _deny(websocket, error)
        return
    try:
        await websocket.accept()
        await _hello(host, websocket, principal)
    finally:
        host.limits.release(held)


async def _hello(host: DialoutHost, websocket: WebSocket, principal: Principal) -> None:
    try:
        async with asyncio.timeout(HELLO_TIMEOUT_S):
            text = await websocket.receive_text()
        hello = frames.parse_hello(text)
    except NestingError as exc:
        log.warning("dial-out hello from %s refused: %s", _client(websocket), exc)
        await _close(websocket, frames.POLICY_VIOLATION, str(exc))
        return
    except (TimeoutError, KeyError, WebSocketDisconnect, ValueError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "send the hello message first"
        await _close(websocket, frames.BAD_HELLO, reason)
        return
    try:
        admitted = await run_in_threadpool(_admit, host, principal, hello)
        held = host.limits.hold_service(admitted.service_guid)
    except (Refused, CapReached) as refused:
        code = refused.code if isinstance(refused, Refused) else frames.TOO_MANY_CONNECTIONS
        log.info("dial-out hello for %s refused: %s", hello.service_guid, refused.reason)
        await _close(websocket, code, refused.reason)
        return
    try:
        await _serve(host, websocket, hello, admitted)
    finally:
        host.limits.release(held)


async def _serve(
    host: DialoutHost, websocket: WebSocket, hello: frames.Hello, admitted: Admitted
) -> None:
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
    hubs = await host.hubs.get()
    worker_id = host.worker_id()
    await websocket.send_json(
        {
            "type": "welcome",
            "instance_id": connection.instance_id,
            "max_concurrency": connection.granted,
            "hub_id": hub_id(worker_id) if worker_id else None,
            "hubs": hubs,
        }
    )
    host.connections.add(connection)
    log.info("%s connected for service %s", connection.label, connection.service_guid)
    announcer = asyncio.create_task(_announce(host, websocket, hubs))
    reason = "the recognizer closed the connection"
    try:
        reason = await _read_results(websocket, connection, host.limits.reader())
    finally:
        announcer.cancel()
        host.connections.remove(connection, reason)
        log.info("%s disconnected: %s", connection.label, reason)


async def _read_results(websocket: WebSocket, connection: Connection, reader: Reader) -> str:
    """Hand every result to its request until the connection ends; returns why it ended.

    After each message the reader's budget may make it wait before the next one: while
    it waits uvicorn reads nothing more from the socket, so the sender is slowed by TCP,
    and a flooding connection costs the hub a bounded share of its event loop."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return f"closed ({message.get('code', 1000)})"
        text = message.get("text")
        if text is None:
            return await _violation(websocket, "send results as text messages")
        try:
            reply = frames.parse_reply(text)
        except NestingError as exc:
            return await _violation(websocket, str(exc), connection)
        except FrameError as bad:
            if bad.request_id is None:
                return await _violation(websocket, bad.error.detail)
            expected = connection.fail(bad.request_id, bad.error)
        else:
            expected = connection.answer(reply)
        if not expected:
            too_many = reader.stray()
            if too_many is not None:
                return await _violation(websocket, too_many, connection)
        wait_s = reader.wait_s(len(text))
        if wait_s > 0:
            await asyncio.sleep(wait_s)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.close(code, frames.close_reason(reason))


async def _violation(websocket: WebSocket, reason: str, logged: Connection | None = None) -> str:
    """Close a connection that broke the protocol (1008); its requests fail. `logged`:
    say so in one log line (a hostile connection's, never a traceback)."""
    if logged is not None:
        log.warning("%s closed: %s", logged.label, reason)
    await _close(websocket, frames.POLICY_VIOLATION, reason)
    return f"protocol violation: {reason}"


async def _announce(host: DialoutHost, websocket: WebSocket, told: list[dict[str, str]]) -> None:
    """Tell the recognizer when the live dispatching processes change."""
    while True:
        await asyncio.sleep(HUBS_EVERY_S)
        try:
            hubs = await host.hubs.get()
            if hubs != told:
                await websocket.send_json({"type": "hubs", "hubs": hubs})
                told = hubs
        except Exception as exc:  # the connection is closing, or the database is away
            log.debug("could not update the hubs of a connection: %s", exc)


__all__ = ["DialoutHost", "connect", "router"]

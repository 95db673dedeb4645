"""Relay and check through the dial-out connections of `recoghub serve`'s worker child.

Under `recoghub serve` the worker child holds every dial-out connection made to serve's
port (gateway.dialout.handover), but relay, check and `service show` are the API
process's. This bridge, a Unix stream socket pair made when the child starts, lets the
API process see and use them without holding them:

- the child tells the API process its live connections (label, service, granted
  concurrency) whenever they change; the API process keeps a `Connection` for each in
  its dispatcher's registry, so relay, check and `connected` treat them as its own;
- a request the API process sends on one (a relay's signed frame, a check's ping) goes
  to the child, which sends it on the real connection within that connection's slots
  (shared with the runs: a team never sees more requests in flight than it was granted)
  and sends back the result, or why there is none;
- `GET /metrics` asks the child for its instruments (the runs' attempts and latencies,
  its loop lag) and serves them merged with the API process's own (gateway.observability).

Each message is a 4-byte big-endian length, a JSON header line, then raw bytes (a request
frame, or a result's body).
"""

import asyncio
import contextlib
import json
import logging
import socket
import struct
from typing import Any

from prometheus_client import generate_latest

from gateway.dialout.connections import PREFIX, Connection, Connections
from gateway.dialout.frames import Reply
from gateway.errors import Outcome, RecognizerConnectError, RecognizerError

log = logging.getLogger("recoghub.dialout")
_LENGTH = struct.Struct(">I")
# A relayed image (RECOGHUB_MAX_IMAGE_BYTES, 8 MiB by default) and its header fit.
MESSAGE_MAX = 256 * 1024 * 1024


def bridge_pair() -> tuple[socket.socket, socket.socket]:
    """(the API process's end, the child's end); the child's is inheritable."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child.set_inheritable(True)
    return parent, child


async def _write(writer: asyncio.StreamWriter, header: dict[str, Any], payload: bytes) -> None:
    head = json.dumps(header).encode() + b"\n"
    writer.write(_LENGTH.pack(len(head) + len(payload)) + head + payload)
    await writer.drain()


async def _read(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > MESSAGE_MAX:
        raise ValueError(f"bridge message of {length} bytes")
    data = await reader.readexactly(length)
    head, _, payload = data.partition(b"\n")
    header: dict[str, Any] = json.loads(head)
    return header, payload


def _error_of(header: dict[str, Any]) -> RecognizerError:
    """The error the child met, as the same kind of RecognizerError."""
    outcome = Outcome(header.get("outcome", Outcome.CONNECT_ERROR.value))
    kinds = [RecognizerError]
    while kinds:
        kind = kinds.pop()
        if kind.outcome is outcome:
            error = kind.__new__(kind)
            RecognizerError.__init__(error, str(header["error"]))
            return error
        kinds.extend(kind.__subclasses__())
    error = RecognizerConnectError(str(header["error"]))
    error.outcome = outcome
    return error


class ParentBridge:
    """The API process's end: mirrors the child's connections into `connections`."""

    def __init__(self, sock: socket.socket, connections: Connections) -> None:
        self.sock = sock
        self.connections = connections
        self._writer: asyncio.StreamWriter | None = None
        self._metrics: dict[int, asyncio.Future[bytes]] = {}
        self._asked = 0

    async def metrics(self, timeout_s: float = 2.0) -> bytes | None:
        """The child's Prometheus text (its runs' attempts, latencies, loop lag), or None
        when it does not answer in time."""
        if self._writer is None or self._writer.is_closing():
            return None
        self._asked += 1
        asked = self._asked
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._metrics[asked] = waiter
        try:
            await _write(self._writer, {"type": "metrics", "asked": asked}, b"")
            async with asyncio.timeout(timeout_s):
                return await waiter
        except (TimeoutError, ConnectionError):
            return None
        finally:
            self._metrics.pop(asked, None)

    async def run(self) -> None:
        """Until the child's end closes; then every mirrored connection is dropped."""
        reader, self._writer = await asyncio.open_unix_connection(sock=self.sock)
        try:
            while True:
                header, payload = await _read(reader)
                if header["type"] == "connections":
                    self._mirror(header["connections"])
                elif header["type"] == "reply":
                    self._settle(header, payload)
                elif header["type"] == "metrics":
                    waiter = self._metrics.get(int(header["asked"]))
                    if waiter is not None and not waiter.done():
                        waiter.set_result(payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.connections.close_all("the hub's dispatch worker stopped")
            self._writer.close()

    def _mirror(self, live: list[dict[str, Any]]) -> None:
        labels = {entry["label"] for entry in live}
        for connection in self.connections.all():
            if connection.label not in labels:
                self.connections.remove(connection, "the recognizer disconnected")
        for entry in live:
            if self.connections.get(entry["label"]) is None:
                self.connections.add(self._connection(entry))

    def _connection(self, entry: dict[str, Any]) -> Connection:
        label = str(entry["label"])

        async def send(message: bytes | str) -> None:
            await self._forward(label, message)

        return Connection(
            instance_id=label.removeprefix(PREFIX),
            service_guid=str(entry["service_guid"]),
            granted=int(entry["granted"]),
            send=send,
        )

    async def _forward(self, label: str, message: bytes | str) -> None:
        # The request id is inside the frame; the waiting Connection has it too.
        if self._writer is None or self._writer.is_closing():
            raise ConnectionError("the hub's dispatch worker is not running")
        raw = message.encode() if isinstance(message, str) else message
        await _write(
            self._writer,
            {"type": "request", "label": label, "text": isinstance(message, str)},
            raw,
        )

    def _settle(self, header: dict[str, Any], payload: bytes) -> None:
        connection = self.connections.get(header["label"])
        if connection is None:
            return
        request_id = str(header["request_id"])
        if "error" in header:
            connection.fail(request_id, _error_of(header))
        else:
            connection.answer(Reply(request_id, int(header["status"]), payload))


class ChildBridge:
    """The child's end: tells the API process its connections, sends its requests."""

    def __init__(self, sock: socket.socket, connections: Connections, timeout_s: float) -> None:
        self.sock = sock
        self.connections = connections
        self.timeout_s = timeout_s
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    async def run(self) -> None:
        """Until the API process's end closes, or cancelled."""
        reader, self._writer = await asyncio.open_unix_connection(sock=self.sock)
        self.connections.on_change = self._changed.set
        announcer = asyncio.create_task(self._announce())
        try:
            while True:
                header, payload = await _read(reader)
                if header["type"] == "request":
                    task = asyncio.create_task(self._request(header, payload))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                elif header["type"] == "metrics":
                    await _write(self._writer, header, generate_latest())
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.connections.on_change = None
            announcer.cancel()
            for task in list(self._tasks):
                task.cancel()
            self._writer.close()

    async def _announce(self) -> None:
        assert self._writer is not None
        self._changed.set()
        while True:
            await self._changed.wait()
            self._changed.clear()
            live = [
                {"label": c.label, "service_guid": c.service_guid, "granted": c.granted}
                for c in self.connections.all()
            ]
            await _write(self._writer, {"type": "connections", "connections": live}, b"")

    async def _request(self, header: dict[str, Any], payload: bytes) -> None:
        assert self._writer is not None
        label = str(header["label"])
        message: bytes | str = payload.decode() if header.get("text") else payload
        request_id = _request_id(message)
        answer: dict[str, Any] = {"type": "reply", "label": label, "request_id": request_id}
        body = b""
        connection = self.connections.get(label)
        try:
            if connection is None:
                raise RecognizerConnectError(f"{label} is no longer connected to this hub")
            async with asyncio.timeout(self.timeout_s), connection.slot():
                reply = await connection.request(request_id, message)
            answer["status"], body = reply.status, reply.body
        except TimeoutError:
            answer |= {"error": "no answer in time", "outcome": Outcome.TIMEOUT.value}
        except RecognizerError as exc:
            answer |= {"error": exc.detail, "outcome": exc.outcome.value}
        with contextlib.suppress(ConnectionError):
            await _write(self._writer, answer, body)


def _request_id(message: bytes | str) -> str:
    """The request id of a request frame or a ping (gateway.dialout.frames)."""
    if isinstance(message, str):
        return str(json.loads(message)["request_id"])
    (length,) = struct.unpack(">I", message[:4])
    return str(json.loads(message[4 : 4 + length])["request_id"])

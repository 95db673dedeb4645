"""The live dial-out connections of one hub process, as instances of their services.

A `Connection` is one recognizer's WebSocket seen as an instance: it sends request
frames and pings, matches the answers (any order) to the requests waiting for them, and
fails them all as `connect_error` when it drops. `Connections` is the process's registry,
from which the dispatcher takes a service's instances beside its HTTP endpoints.

A connection is named `dialout:<instance>/<id>` in attempt logs and in `check`; HTTP
endpoints are http(s) URLs, so the two never mix.
"""

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable

from gateway.dialout.frames import Reply
from gateway.errors import RecognizerConnectError, RecognizerError

PREFIX = "dialout:"
# Requests that ended unanswered (timed out, abandoned) a connection remembers, so that
# their late answers are not counted as results for requests never sent.
LATE_REMEMBERED = 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def is_dialout(instance: str) -> bool:
    return instance.startswith(PREFIX)


def new_instance_id(name: str) -> str:
    """`<name>/<random>`: the recognizer's own name made safe, unique per connection."""
    safe = _UNSAFE.sub("-", name).strip("-")[:40] or "recognizer"
    return f"{safe}/{secrets.token_hex(3)}"


class Connection:
    """One recognizer connected out to this process, as an instance of its service."""

    def __init__(
        self,
        *,
        instance_id: str,
        service_guid: str,
        granted: int,
        send: Callable[[bytes | str], Awaitable[None]],
    ) -> None:
        self.instance_id = instance_id
        self.label = PREFIX + instance_id
        self.service_guid = service_guid
        self.granted = granted
        self._send = send
        self._slots = asyncio.Semaphore(granted)
        self._waiting: dict[str, asyncio.Future[Reply]] = {}
        self._abandoned: dict[str, None] = {}  # ids, oldest first
        self.closed: str | None = None  # why, once dropped

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    def slot(self) -> asyncio.Semaphore:
        """Held while a request is in flight: at most `granted` at once on this connection."""
        return self._slots

    async def request(self, request_id: str, message: bytes | str) -> Reply:
        """Send a request (or ping) and wait for its result. Raises RecognizerConnectError
        when the connection is or goes down, RecognizerError for a result that breaks the
        protocol; the caller bounds the wait."""
        if self.closed is not None:
            raise RecognizerConnectError(f"{self.label} is gone: {self.closed}")
        if request_id in self._waiting:
            raise RecognizerConnectError(f"request {request_id} is already in flight")
        waiter: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiter
        try:
            try:
                await self._send(message)
            except Exception as exc:  # the socket went away under us
                raise RecognizerConnectError(
                    f"{self.label} dropped while sending: {type(exc).__name__}"
                ) from None
            return await waiter
        finally:
            self._waiting.pop(request_id, None)
            # Timed out or abandoned (awaiting it, the caller's cancellation cancels
            # the waiter too): its answer may come late.
            if not waiter.done() or waiter.cancelled():
                self._abandoned[request_id] = None
                if len(self._abandoned) > LATE_REMEMBERED:
                    del self._abandoned[next(iter(self._abandoned))]

    def answer(self, reply: Reply) -> bool:
        """Hand a result to the request waiting for it. False for a stray: a result for a
        request never sent on this connection, or already answered (the first late
        answer to a request that timed out is not a stray, only dropped)."""
        return self._settle(reply.request_id, lambda waiter: waiter.set_result(reply))

    def fail(self, request_id: str, error: RecognizerError) -> bool:
        """Fail one waiting request with the outcome its bad result deserves; False for
        a stray, as `answer`."""
        return self._settle(request_id, lambda waiter: waiter.set_exception(error))

    def _settle(self, request_id: str, settle: Callable[[asyncio.Future[Reply]], None]) -> bool:
        waiter = self._waiting.get(request_id)
        if waiter is not None and not waiter.done():
            settle(waiter)
            return True
        if request_id in self._abandoned:  # a late answer, once
            del self._abandoned[request_id]
            return True
        return False

    def drop(self, reason: str) -> None:
        """The connection is gone: every request in flight fails as connect_error."""
        if self.closed is None:
            self.closed = reason
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(
                    RecognizerConnectError(f"{self.label} dropped with the request: {reason}")
                )


class Connections:
    """Every live connection of this process, by label and by service."""

    def __init__(self) -> None:
        self._by_label: dict[str, Connection] = {}
        self._labels: dict[str, tuple[str, ...]] = {}  # service GUID -> labels, in order
        # Called after each change (`recoghub serve`'s worker child tells its API
        # process, gateway.dialout.bridge).
        self.on_change: Callable[[], None] | None = None

    def add(self, connection: Connection) -> None:
        self._by_label[connection.label] = connection
        labels = self._labels.get(connection.service_guid, ())
        self._labels[connection.service_guid] = (*labels, connection.label)
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def remove(self, connection: Connection, reason: str) -> None:
        """Forget `connection` and fail its requests in flight."""
        connection.drop(reason)
        if self._by_label.pop(connection.label, None) is None:
            return
        left = tuple(
            x for x in self._labels.get(connection.service_guid, ()) if x != connection.label
        )
        if left:
            self._labels[connection.service_guid] = left
        else:
            self._labels.pop(connection.service_guid, None)
        self._changed()

    def instances(self, service_guid: str) -> tuple[str, ...]:
        """The labels of the service's live connections, oldest first."""
        return self._labels.get(service_guid, ())

    def get(self, label: str) -> Connection | None:
        return self._by_label.get(label)

    def all(self) -> list[Connection]:
        return list(self._by_label.values())

    def close_all(self, reason: str) -> None:
        for connection in list(self._by_label.values()):
            self.remove(connection, reason)

"""Limits on every listener the hub opens (SPEC §9): `recoghub serve`, `recoghub worker
--listen` and the demo's servers all build their uvicorn.Config with `listener_options`.

uvicorn alone bounds none of this. Its keep-alive timer runs only between two requests
and any byte received cancels it, so a connection that never completes a request head
(nothing at all, or one header byte every few seconds) stays open forever; and it
accepts every connection the OS hands it. Per listener, the hub adds:

- **A head timeout.** A request head (request line and headers) must arrive within
  `RECOGHUB_HEADER_TIMEOUT_S` of the connection opening, or of the previous response on
  a kept-alive connection, or the connection is closed. The clock stops when the head is
  complete, so a slow upload body or a WebSocket (upgraded once its head is in) is never
  cut by it. An idle kept-alive connection is closed by uvicorn after `KEEP_ALIVE_S`.
  An answer sent before its request's body has all arrived (the body guard's 413) leaves
  uvicorn reading and dropping the rest on the same connection: those bytes are the old
  request's, not a head, so they count towards no head size; the deadline runs from the
  answer (bounding the rest of the body too) and starts again once the body is in.
- **A head size.** A head larger than `MAX_HEAD_BYTES` is answered 431 and closed
  (httptools, unlike h11, sets no bound of its own).
- **Two caps.** At most `RECOGHUB_LISTEN_MAX_HANDSHAKES` connections that have not yet
  sent their first complete head, and at most `RECOGHUB_LISTEN_MAX_CONNECTIONS`
  connections in all (HTTP and WebSocket). Past either, a new connection is closed at
  once, before a byte of it is read.

Why closed rather than answered 503: no request has been read yet, so there is nothing
to answer (and a reply written before the request is read is commonly lost to the reset
the kernel sends when a socket closes with unread bytes); closing costs the hub nothing
an attacker can multiply, and a client retries it like any network failure. uvicorn's
own `limit_concurrency` is not used: it answers 503 only once a whole head has arrived,
so it bounds neither half-open connections nor, since the refused connection stays
open, file descriptors.

Under `recoghub serve` the listener also hands every upgrade of `GET /api/v1/connect` to
the worker child, which alone sends through dial-out connections (gateway.dialout.
handover); while no child runs, such an upgrade is answered 503 `worker_unavailable`.

Only the httptools protocol is limited: every hub listener names it (it is a declared
dependency), never h11.
"""

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.config import Settings
from gateway.dialout.handover import is_connect

if TYPE_CHECKING:
    import socket

# uvicorn's default, stated here so that the README's figure is this one.
KEEP_ALIVE_S = 5
# Request line and headers; bearer tokens and a browser's cookies fit many times over.
MAX_HEAD_BYTES = 64 * 1024
# Refused connections are counted and logged at most this often, never one line each.
REFUSAL_LOG_EVERY_S = 60.0

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class ListenerLimits:
    """The limits of one listener, and its connections still sending their first head."""

    header_timeout_s: float
    max_handshakes: int
    max_connections: int
    handshaking: set[asyncio.Protocol] = field(default_factory=set)
    refused: int = 0
    logged_at: float = -math.inf

    @classmethod
    def of(cls, settings: Settings) -> "ListenerLimits":
        connections = settings.listen_max_connections
        return cls(
            header_timeout_s=settings.header_timeout_s,
            max_handshakes=min(settings.listen_max_handshakes, connections),
            max_connections=connections,
        )

    def refusal(self, connections: int) -> str | None:
        """Why a new connection must be closed (`connections` counts it), or None."""
        if connections > self.max_connections:
            return f"{self.max_connections} connections open (RECOGHUB_LISTEN_MAX_CONNECTIONS)"
        if len(self.handshaking) >= self.max_handshakes:
            return (
                f"{self.max_handshakes} connections still sending their request head "
                "(RECOGHUB_LISTEN_MAX_HANDSHAKES)"
            )
        return None

    def note_refusal(self, reason: str) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self.logged_at >= REFUSAL_LOG_EVERY_S:
            logger.warning(
                "closing new connections at once: %s (%d since the last such line; "
                "at most one a minute)",
                reason,
                self.refused,
            )
            self.refused, self.logged_at = 0, now


class HandOver(Protocol):
    """Where a listener sends the dial-out connections it does not serve itself."""

    def hand_over(self, sock: "socket.socket", head: bytes) -> bool: ...


WORKER_AWAY = (
    '{"detail": "the hub\'s dispatch worker, which holds the dial-out connections, is not '
    'running now; connect again in a few seconds", "code": "worker_unavailable"}'
)


class HeadTooLarge(Exception):
    """Raised inside the parser: the head being parsed passed MAX_HEAD_BYTES."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head timeout, head size and caps above;
    `listener_options` makes a subclass per listener that carries its `limits`."""

    limits: ClassVar[ListenerLimits]
    # `recoghub serve`'s worker child, which takes the dial-out connections.
    handover: ClassVar["HandOver | None"] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # received while waiting for a head
        self._head_size = 0  # of the head being parsed
        self._head_too_large = False
        self._body_done = True  # the last request's body has all arrived (or none yet)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        reason = self.limits.refusal(len(self.connections))
        if reason is not None:
            self.limits.note_refusal(reason)
            transport.close()
            return
        self.limits.handshaking.add(self)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # After an early answer the bytes still coming are the old request's body.
        waiting = self._head_timer is not None and self._body_done
        if waiting:
            self._head_bytes += len(data)
        super().data_received(data)
        # Still no complete head after this chunk: the head itself is that large.
        if (
            waiting
            and self._head_timer is not None
            and self._head_bytes > MAX_HEAD_BYTES
            and not self.transport.is_closing()
        ):
            self._head_arrived()
            self._head_too_large = True
            self._refuse_head()

    # llhttp hands the head over in pieces; past MAX_HEAD_BYTES a callback raises, which
    # uvicorn turns into send_400_response, answered 431 below.
    def on_message_begin(self) -> None:
        self._head_size = 0
        self._body_done = False
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def handle_websocket_upgrade(self) -> None:
        if self.handover is None or not is_connect(self.url):
            super().handle_websocket_upgrade()
            return
        # A dial-out recognizer: the worker child serves it (gateway.dialout.handover).
        # The head as uvicorn replays it to its own WebSocket protocol.
        head = [self.scope["method"].encode(), b" ", self.url, b" HTTP/1.1\r\n"]
        for name, value in self.scope["headers"]:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"\r\n")
        sock = self.transport.get_extra_info("socket")
        if sock is None or not self.handover.hand_over(sock, b"".join(head)):
            self._answer_and_close(
                b"503 Service Unavailable",
                WORKER_AWAY,
                content_type=b"application/json",
                extra=b"retry-after: 5\r\n",
            )
            return
        # The child holds a duplicate: closing ours ends nothing for the recognizer.
        self.connections.discard(self)
        self.transport.pause_reading()
        self.transport.abort()

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._refuse_head()
        else:
            self._answer_and_close(b"400 Bad Request", msg)

    def on_headers_complete(self) -> None:
        self._head_arrived()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._body_done = True
        super().on_message_complete()
        if self._head_timer is not None:
            # The body of an early answer's request is in: the next head's own deadline.
            self._head_timer.cancel()
            self._await_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn arms its keep-alive timer exactly when the connection now waits for a
        # new request head (none is queued behind this one): that head has a deadline too.
        # Answered before its body was all in, it first waits for the rest of that body.
        if self.timeout_keep_alive_task is not None and self._head_timer is None:
            self._await_head()

    def _await_head(self) -> None:
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_late)

    def _head_arrived(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self.limits.handshaking.discard(self)

    def _head_late(self) -> None:
        self._head_timer = None
        self.limits.handshaking.discard(self)
        if not self.transport.is_closing():
            self.transport.close()

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise HeadTooLarge

    def _refuse_head(self) -> None:
        self._answer_and_close(
            b"431 Request Header Fields Too Large", f"request head over {MAX_HEAD_BYTES} bytes"
        )

    def _answer_and_close(
        self,
        status: bytes,
        msg: str,
        *,
        content_type: bytes = b"text/plain; charset=utf-8",
        extra: bytes = b"",
    ) -> None:
        """The listener's own answers, written before any app sees the request: nosniff
        like every answer of the app (gateway.middleware.nosniff), then closed."""
        body = msg.encode()
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\n"
            b"content-type: "
            + content_type
            + b"\r\n"
            + extra
            + b"x-content-type-options: nosniff\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()


def listener_options(settings: Settings, handover: "HandOver | None" = None) -> dict[str, Any]:
    """The uvicorn.Config keywords of one listener (its own caps: call it per listener),
    used beside `gateway.dialout.frames.uvicorn_ws_options()`. With `handover`, dial-out
    connections go to that process (`recoghub serve`'s worker child)."""
    protocol = type(
        "LimitedHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {"limits": ListenerLimits.of(settings), "handover": handover},
    )
    return {"http": protocol, "timeout_keep_alive": KEEP_ALIVE_S}

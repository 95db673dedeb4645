"""Dial-out connections handed from `recoghub serve`'s API process to its worker child.

A worker sends to a dial-out recognizer only through a connection it holds (SPEC §10),
and under `recoghub serve` the worker is a child process (`gateway.worker_child`), while
recognizers connect to serve's own port. So the API process's listener
(`gateway.listening`), once a complete request head asks to upgrade
`GET /api/v1/connect`, passes the connection's socket (a duplicate of its descriptor,
SCM_RIGHTS) and the request head over a Unix socket pair made when the child started,
then forgets the connection without ending it: the child holds the duplicate. The
child feeds the socket to its connect-route server (`gateway.dialout.listener`) as if
that server had accepted it, and replays the head; the key check, the caps and the
limits are that server's.

The pair is SOCK_SEQPACKET: one message per hand-over, and the first message the parent
sends is the child's settings. When the API process dies, the child reads end-of-file
on its end: its signal to stop.
"""

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import httptools

log = logging.getLogger("recoghub.dialout")

CONNECT_PATH = b"/api/v1/connect"
# A request head is at most gateway.listening.MAX_HEAD_BYTES; the settings are ~3 KB.
MESSAGE_MAX = 256 * 1024


@dataclass(frozen=True, slots=True)
class ServeLink:
    """The worker child's ends of its links to serve's API process: `channel` hands it
    connections (and ends when that process is gone), `bridge` lets that process relay
    and check through them (gateway.dialout.bridge)."""

    channel: socket.socket
    bridge: socket.socket


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """(the API process's end, the child's end); the child's is inheritable."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for end in (parent, child):
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MESSAGE_MAX)
        end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MESSAGE_MAX)
    child.set_inheritable(True)
    return parent, child


def is_connect(url: bytes) -> bool:
    """Whether a request target names the connect route (any query string)."""
    try:
        return bool(httptools.parse_url(url).path == CONNECT_PATH)
    except httptools.HttpParserInvalidURLError:
        return False


def send_connection(channel: socket.socket, sock: socket.socket, head: bytes) -> bool:
    """Pass a duplicate of `sock` and the request `head` to the child; False when the
    child cannot take it now (gone, or its queue full)."""
    fd = os.dup(sock.fileno())
    try:
        socket.send_fds(channel, [head], [fd])
        return True
    except OSError as exc:
        log.warning("could not hand a dial-out connection to the worker: %s", exc)
        return False
    finally:
        os.close(fd)


def receive_connections(
    channel: socket.socket,
    accept: Callable[[socket.socket, bytes], None],
    closed: Callable[[], None],
) -> Callable[[], None]:
    """In the child, on the running loop: call `accept(sock, head)` for every connection
    handed over, and `closed()` once when the API process's end closes. Returns the
    function that stops listening."""
    loop = asyncio.get_running_loop()
    channel.setblocking(False)
    fd = channel.fileno()

    def readable() -> None:
        try:
            head, fds, _, _ = socket.recv_fds(channel, MESSAGE_MAX, 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            head, fds = b"", []
        if not head and not fds:
            loop.remove_reader(fd)
            closed()
            return
        for extra in fds[1:]:
            os.close(extra)
        if not fds:
            return
        sock = socket.socket(fileno=fds[0])
        try:
            accept(sock, head)
        except Exception:
            log.exception("could not take a dial-out connection handed over")
            sock.close()

    loop.add_reader(fd, readable)

    def stop() -> None:
        with contextlib.suppress(Exception):
            loop.remove_reader(fd)

    return stop

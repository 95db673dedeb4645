"""Raw-socket clients for the listener limits (gateway.listening): what a slow or hostile
client does to a port, and what a normal client then sees."""

import socket
import time
from collections.abc import Callable

# The start of a valid request head that is never finished.
OPEN_HEAD = b"GET /ping HTTP/1.1\r\nHost: hub\r\nX-Slow: "
GET_PING = b"GET /ping HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n"


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].rstrip("/"))


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(1.0)
    return sock


def closed_by_server(sock: socket.socket, *, trickle: bool, bound_s: float) -> bool:
    """Send nothing, or one header byte a second, until the server closes the connection;
    True if it did before `bound_s` (an upper bound for a loaded machine, not a timing)."""
    deadline = time.monotonic() + bound_s
    for _ in range(int(bound_s * 2) + 1):
        if time.monotonic() > deadline:
            return False
        try:
            if trickle:
                sock.sendall(b"a")
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def answer(port: int, request: bytes = GET_PING) -> bytes:
    """The server's whole answer to `request` on a new connection (b"" if it closed the
    connection without one)."""
    received = b""
    try:
        with connect(port) as sock:
            sock.settimeout(10)
            sock.sendall(request)
            for _ in range(1000):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    return received


def answered(port: int) -> bool:
    return answer(port).startswith(b"HTTP/1.1 200")


def poll(check: Callable[[], object], what: str, bound_s: float = 30.0) -> None:
    """Poll `check()` until truthy; the bound only stops a hung test."""
    deadline = time.monotonic() + bound_s
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)

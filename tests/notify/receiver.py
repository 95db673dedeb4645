"""A webhook receiver as a team runs one: a real server that keeps every post it gets
(path, headers, body, the status it answered), and per path answers 200, a given series
of statuses first, or hangs (until released, at most `HANG_S`)."""

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.protocol.signing import verify
from tests.servers import LiveServer, live_server

HANG_S = 30.0  # only ends a hang the test forgot to release


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None  # None: still hanging (or cut off by the hub)

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def signature_problem(self, secret: str) -> str | None:
        return verify(
            secret,
            timestamp=self.headers.get("x-recog-timestamp", ""),
            request_id=self.headers.get("x-recog-request-id", ""),
            body=self.body,
            signature=self.headers.get("x-recog-signature", ""),
        )


@dataclass
class Receiver:
    url: str = ""
    posts: list[Post] = field(default_factory=list)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, path: str) -> list[Post]:
        """The posts to `path` that the receiver answered 2xx, in arrival order."""
        with self.lock:
            return [p for p in self.posts if p.path == path and p.status == 200]

    def kinds(self, path: str) -> list[str]:
        return [p.event["event"] for p in self.answered(path)]

    def hanging(self) -> int:
        with self.lock:
            return sum(1 for p in self.posts if p.status is None)


def receiver_app(receiver: Receiver) -> Starlette:
    async def hook(request: Request) -> Response:
        path = request.url.path
        post = Post(path, dict(request.headers), await request.body(), None)
        with receiver.lock:
            receiver.posts.append(post)
            queued = receiver.statuses.get(path)
            status = queued.pop(0) if queued else 200
        if path in receiver.hang:
            deadline = time.monotonic() + HANG_S
            while not receiver.released.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        with receiver.lock:
            post.status = status
        return PlainTextResponse("thanks", status_code=status)

    return Starlette(routes=[Route("/{name}", hook, methods=["POST"])])


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server: LiveServer
    with live_server(receiver_app(receiver)) as server:
        receiver.url = server.url
        try:
            yield receiver
        finally:
            receiver.released.set()

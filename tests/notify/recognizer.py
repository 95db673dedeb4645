"""A recognizer that goes down mid-run and comes back, as a team's does."""

import asyncio
import threading
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


class Recognizer:
    """A recognizer that can be taken down (its answers hang past the hub's timeout, its
    /ping fails) and brought back; it answers `cat:1` while up."""

    def __init__(self, *, fail_after: int | None = None) -> None:
        self.up = threading.Event()
        self.up.set()
        self.fail_after = fail_after
        self.requests = 0
        self.lock = threading.Lock()

    def app(self) -> Starlette:
        async def ping(request: Request) -> Response:
            return PlainTextResponse("ok", status_code=200 if self.up.is_set() else 503)

        async def recognize(request: Request) -> Response:
            await request.body()
            with self.lock:
                self.requests += 1
                if self.fail_after is not None and self.requests == self.fail_after:
                    self.up.clear()
            deadline = time.monotonic() + 5.0
            while not self.up.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            return PlainTextResponse("cat:1")

        return Starlette(
            routes=[Route("/ping", ping), Route("/recognize", recognize, methods=["POST"])]
        )

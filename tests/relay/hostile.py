"""Recognizers a hostile team could run, and a server holding a secret, for SPEC §9 tests.

One live app stands in for all of them; the behaviour is chosen by the first part of the
path prefix: `{url}/redirect` answers 302 to `redirect_to`, `{url}/endless` streams a
chunked body that never ends, `{url}/huge` declares and streams 100 MB (`{url}/huge/2`
too), and any other prefix answers like a good recognizer. Every request is recorded.
"""

import asyncio
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

GOOD_ANSWER = "cat:0.9;dog:0.1"
HUGE_BYTES = 100 * 1024 * 1024
_CHUNK = b"x" * 65536


async def _endless() -> AsyncIterator[bytes]:
    while True:
        yield _CHUNK
        await asyncio.sleep(0)  # lets the server notice the hub hung up


async def _huge() -> AsyncIterator[bytes]:
    for _ in range(HUGE_BYTES // len(_CHUNK)):
        yield _CHUNK
        await asyncio.sleep(0)


class HostileRecognizers:
    def __init__(self, redirect_to: str = "http://127.0.0.1:9") -> None:
        self.redirect_to = redirect_to
        self.seen: list[str] = []
        self.app = Starlette(
            routes=[
                Route("/{prefix:path}/recognize", self.answer, methods=["POST"]),
                Route("/{prefix:path}/ping", self.answer, methods=["GET"]),
            ]
        )

    async def answer(self, request: Request) -> Response:
        self.seen.append(request.url.path)
        kind = request.path_params["prefix"].partition("/")[0]
        if kind == "redirect":
            return RedirectResponse(self.redirect_to, status_code=302)
        if kind == "endless":
            return StreamingResponse(_endless(), media_type="text/plain")
        if kind == "huge":
            return StreamingResponse(
                _huge(), media_type="text/plain", headers={"Content-Length": str(HUGE_BYTES)}
            )
        return PlainTextResponse(GOOD_ANSWER if request.method == "POST" else "pong")


class SecretServer:
    """An internal server the hub must never read: it answers with its secret."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.seen: list[str] = []
        self.app = Starlette(routes=[Route("/{path:path}", self.answer, methods=["GET", "POST"])])

    async def answer(self, request: Request) -> Response:
        self.seen.append(request.url.path)
        return PlainTextResponse(f"cat:1;{self.secret}:0.5")

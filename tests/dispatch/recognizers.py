"""Tiny recognizers with one behaviour each, served by one Starlette app.

The behaviour is chosen by the instance's path prefix, so one live server stands in for
many recognizers: `{url}/ok`, `{url}/sleep/0.05`, `{url}/status/500`, `{url}/bad`,
`{url}/big`, `{url}/big-chunked`, `{url}/big-error`, `{url}/chunked` (a valid answer in
chunks), `{url}/trickle` (a valid answer, one byte every 0.1 s). Any other prefix (e.g.
`{url}/rr-a`) answers like `ok`. `/ping` answers 200, except under `{url}/status/N`
(status N) and `{url}/sleep/S` (after S seconds). Every request to `/recognize` is
recorded with its prefix, headers and body.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

OK_ANSWER = "cat:0.2;dog:0.9;bird:0.2;cat:0.1;"
BAD_ANSWER = "a:1;dog;b:2"
BIG_BYTES = 70 * 1024


@dataclass(frozen=True)
class Seen:
    prefix: str
    headers: dict[str, str]
    body: bytes


class FakeRecognizers:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.app = Starlette(
            routes=[
                Route("/{prefix:path}/recognize", self.recognize, methods=["POST"]),
                Route("/{prefix:path}/ping", self.ping, methods=["GET"]),
            ]
        )

    def requests_for(self, service_guid: str) -> list[Seen]:
        return [s for s in self.seen if s.headers.get("x-recog-service-guid") == service_guid]

    async def ping(self, request: Request) -> Response:
        kind, _, argument = request.path_params["prefix"].partition("/")
        if kind == "sleep":
            await asyncio.sleep(float(argument))
        if kind == "status":
            return PlainTextResponse("not now", status_code=int(argument))
        return PlainTextResponse("pong")

    async def recognize(self, request: Request) -> Response:
        prefix = request.path_params["prefix"]
        body = await request.body()
        self.seen.append(Seen(prefix, dict(request.headers), body))
        kind, _, argument = prefix.partition("/")
        if kind == "sleep":
            await asyncio.sleep(float(argument))
            return PlainTextResponse("slow:1")
        if kind == "status":
            return PlainTextResponse("nope", status_code=int(argument))
        if kind == "bad":
            return PlainTextResponse(BAD_ANSWER)
        if kind == "big":
            return PlainTextResponse("x" * BIG_BYTES)
        if kind == "big-chunked":
            return StreamingResponse(_chunks(), media_type="text/plain")
        if kind == "chunked":
            pieces = [OK_ANSWER[i : i + 5].encode() for i in range(0, len(OK_ANSWER), 5)]
            return StreamingResponse(_each(pieces), media_type="text/plain")
        if kind == "trickle":
            pieces = [bytes([byte]) for byte in OK_ANSWER.encode()]
            return StreamingResponse(_each(pieces, pause_s=0.1), media_type="text/plain")
        if kind == "big-error":
            return PlainTextResponse("e" * 100 * 1024, status_code=503)
        return PlainTextResponse(OK_ANSWER)


async def _chunks() -> AsyncIterator[bytes]:
    for _ in range(BIG_BYTES // 1024):
        yield b"y" * 1024


async def _each(pieces: list[bytes], pause_s: float = 0.0) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
        await asyncio.sleep(pause_s)

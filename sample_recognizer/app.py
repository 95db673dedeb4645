"""The sample recognizer's HTTP service: `GET /ping` and `POST /recognize` (SPEC §2)."""

import asyncio
import random

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.protocol.result_string import ResultStringError, parse_result
from gateway.protocol.signing import (
    HEADER_REQUEST_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    verify,
)
from sample_recognizer.backends import Backend, BackendError, make_backend
from sample_recognizer.config import ConfigError, RecognizerConfig

__all__ = ["ConfigError", "RecognizerConfig", "create_recognizer_app"]

# What a recognizer that "answers badly now and then" sends; parse_result rejects each.
MALFORMED_ANSWERS = ("entry-without-score;", "cat:0.9;;dog:0.1", "cat:high;dog:0.1")
TEXT = "text/plain; charset=utf-8"


class _Recognizer:
    def __init__(self, config: RecognizerConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self.limit = asyncio.Semaphore(config.max_concurrency)
        self.rng = random.Random(config.seed)

    def _happens(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def _refusal(self, secret: str, headers: Headers, body: bytes) -> str | None:
        missing = [
            name
            for name in (HEADER_SIGNATURE, HEADER_TIMESTAMP, HEADER_REQUEST_ID)
            if name not in headers
        ]
        if missing:
            return (
                f"missing {', '.join(missing)} header(s): this recognizer requires signed requests"
            )
        return verify(
            secret,
            timestamp=headers[HEADER_TIMESTAMP],
            request_id=headers[HEADER_REQUEST_ID],
            body=body,
            signature=headers[HEADER_SIGNATURE],
            max_skew_s=self.config.max_skew_s,
        )

    async def ping(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "backend": self.backend.name})

    async def recognize(self, request: Request) -> Response:
        body = await request.body()
        if self.config.secret:
            reason = self._refusal(self.config.secret, request.headers, body)
            if reason is not None:
                return PlainTextResponse(reason, status_code=401, media_type=TEXT)
        # Requests beyond the limit wait here, as they would for a busy model.
        async with self.limit:
            if self.config.delay_ms > 0:
                await asyncio.sleep(self.config.delay_ms / 1000)
            if self._happens(self.config.error_status_rate):
                return PlainTextResponse("deliberate error", status_code=500, media_type=TEXT)
            try:
                answer = await self.backend.recognize(body)
            except BackendError as exc:
                return PlainTextResponse(exc.detail, status_code=exc.status, media_type=TEXT)
        try:
            parse_result(answer)
        except ResultStringError as exc:
            detail = f"the {self.backend.name} backend answered an invalid result string: {exc}"
            return PlainTextResponse(detail, status_code=500, media_type=TEXT)
        if self._happens(self.config.bad_rate):
            answer = self.rng.choice(MALFORMED_ANSWERS)
        return Response(answer, media_type=TEXT)


def create_recognizer_app(config: RecognizerConfig) -> Starlette:
    """An ASGI app serving `GET /ping` and `POST /recognize` with the configured backend.

    Serve it on one event loop. Raises ConfigError when the backend cannot be set up.
    """
    recognizer = _Recognizer(config, make_backend(config))
    return Starlette(
        routes=[
            Route("/ping", recognizer.ping, methods=["GET"]),
            Route("/recognize", recognizer.recognize, methods=["POST"]),
        ]
    )

"""The sample recognizer's HTTP service: `GET /ping` and `POST /recognize` (SPEC §2).

Every answer other than 200 is logged on the `sample_recognizer` logger as one WARNING
line: the request id, the status, the reason (the body the hub gets) and what to do.
The hub only shows a team the start of that body; the log is where the team looks.
"""

import asyncio
import logging
import random

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
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

__all__ = ["ConfigError", "Recognizer", "RecognizerConfig", "Refusal", "create_recognizer_app"]

log = logging.getLogger("sample_recognizer")

# What a recognizer that "answers badly now and then" sends; parse_result rejects each.
MALFORMED_ANSWERS = ("entry-without-score;", "cat:0.9;;dog:0.1", "cat:high;dog:0.1")
TEXT = "text/plain; charset=utf-8"
# A reason is logged whole up to here: a model's exception text can be pages long.
_LOGGED_CHARS = 300

SECRET_TODO = (
    "the hub signs with this service's signing secret: start this recognizer with it "
    "(--secret / RECOGHUB_RECOGNIZER_SECRET)"
)
UNSIGNED_TODO = (
    "only the hub's signed requests are answered; to try it by hand, start it without --secret"
)
CLOCK_TODO = "set this machine's clock right (NTP): a signed request is only good for minutes"
BAD_RESULT_TODO = 'answer "tag:score" entries separated by ";", e.g. dog:0.95;cat:0.05'
ERROR_RATE_TODO = "this recognizer fails requests on purpose: start it without --error-rate"
PATHS_TODO = (
    "the hub calls GET /ping and POST /recognize under the endpoint URL it was given: "
    "register the recognizer's base URL, with no path the recognizer does not serve"
)


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _LOGGED_CHARS else text[: _LOGGED_CHARS - 1] + "…"


def log_refusal(request_id: str | None, status: int, what: str, reason: str, todo: str) -> None:
    """Log an answer other than 200 in one line: the request, the status, why, what to do."""
    log.warning(
        "request %s: answered %d to %s: %s — %s",
        _one_line(request_id or "-"),
        status,
        what,
        _one_line(reason),
        todo,
    )


def refuse(request: Request, status: int, reason: str, todo: str) -> Response:
    """Answer `status` with `reason` as the body, and log it in one line with what to do."""
    what = f"{request.method} {request.url.path}"
    log_refusal(request.headers.get(HEADER_REQUEST_ID), status, what, reason, todo)
    return PlainTextResponse(reason, status_code=status, media_type=TEXT)


class Refusal(Exception):
    """An answer other than 200: `status`, `reason` (the body the hub gets), `todo`."""

    def __init__(self, status: int, reason: str, todo: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.todo = todo


def _signature_refusal(reason: str) -> tuple[str, str]:
    """The body and the what-to-do of a request whose signature failed for `reason`."""
    if reason.startswith("missing"):
        return f"unsigned request: {reason}", UNSIGNED_TODO
    if "away from now" in reason:
        return f"bad signature: {reason}", CLOCK_TODO
    return f"bad signature: {reason}", SECRET_TODO


class Recognizer:
    """What answers a request, over HTTP and over a dial-out connection alike."""

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

    async def answer(self, body: bytes, *, request_id: str, timestamp: str, signature: str) -> str:
        """The result string for one signed request; raises Refusal for any other answer."""
        if self.config.secret:
            reason = verify(
                self.config.secret,
                timestamp=timestamp,
                request_id=request_id,
                body=body,
                signature=signature,
                max_skew_s=self.config.max_skew_s,
            )
            if reason is not None:
                raise Refusal(401, *_signature_refusal(reason))
        return await self._recognize(body)

    async def _recognize(self, body: bytes) -> str:
        # Requests beyond the limit wait here, as they would for a busy model.
        async with self.limit:
            if self.config.delay_ms > 0:
                await asyncio.sleep(self.config.delay_ms / 1000)
            if self._happens(self.config.error_status_rate):
                raise Refusal(500, "deliberate error", ERROR_RATE_TODO)
            try:
                answer = await self.backend.recognize(body)
            except BackendError as exc:
                raise Refusal(exc.status, exc.detail, exc.todo) from None
        try:
            parse_result(answer)
        except ResultStringError as exc:
            detail = f"the {self.backend.name} backend answered an invalid result string: {exc}"
            raise Refusal(500, detail, BAD_RESULT_TODO) from None
        if self._happens(self.config.bad_rate):
            answer = self.rng.choice(MALFORMED_ANSWERS)
        if isinstance(answer, bytes):
            # Bytes that are not UTF-8 stay so: the hub calls them a bad format either way.
            return answer.decode("utf-8", "surrogateescape")
        return answer

    async def ping(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "backend": self.backend.name})

    async def recognize(self, request: Request) -> Response:
        body = await request.body()
        try:
            if self.config.secret:
                reason = self._refusal(self.config.secret, request.headers, body)
                if reason is not None:
                    raise Refusal(401, *_signature_refusal(reason))
            answer = await self._recognize(body)
        except Refusal as refusal:
            return refuse(request, refusal.status, refusal.reason, refusal.todo)
        return Response(answer.encode("utf-8", "surrogateescape"), media_type=TEXT)


def create_recognizer_app(config: RecognizerConfig) -> Starlette:
    """An ASGI app serving `GET /ping` and `POST /recognize` with the configured backend.

    Serve it on one event loop. Raises ConfigError when the backend cannot be set up.
    """
    recognizer = Recognizer(config, make_backend(config))

    async def not_served(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return refuse(
            request, status, f"{request.method} {request.url.path} is not served", PATHS_TODO
        )

    return Starlette(
        routes=[
            Route("/ping", recognizer.ping, methods=["GET"]),
            Route("/recognize", recognizer.recognize, methods=["POST"]),
        ],
        exception_handlers={HTTPException: not_served},
    )

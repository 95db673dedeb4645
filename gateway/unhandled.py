"""The hub's last line of error handling: an exception that no handler knew answers
500 `{"detail", "code": "internal_error", "request_id"}` with an `X-Request-Id` header,
and the log line holding its traceback carries the same id, so an operator can find
what a user reports.

A plain ASGI middleware rather than an `Exception` handler: Starlette re-raises after
such a handler answers, and the server would log the traceback a second time, without
the id.
"""

import logging
import secrets

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("recoghub")
HEADER_REQUEST_ID = "X-Request-Id"


class UnhandledErrors:
    """Wraps the app; answers any exception escaping it as a JSON 500 and logs it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            request_id = secrets.token_hex(8)
            log.exception(
                "request %s: %s %s failed", request_id, scope.get("method"), scope.get("path")
            )
            if started:
                raise  # part of the answer is out: the server can only cut the connection
            response = JSONResponse(
                {
                    "detail": f"internal error of the hub; quote request id {request_id} "
                    "to the organizer",
                    "code": "internal_error",
                    "request_id": request_id,
                },
                status_code=500,
                headers={HEADER_REQUEST_ID: request_id},
            )
            await response(scope, receive, send)

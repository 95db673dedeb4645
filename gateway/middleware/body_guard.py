"""Request bodies are bounded, and none is read before its caller is known (SPEC §9).

FastAPI reads and parses a route's body before it resolves any dependency, the
authentication dependency included: without this guard an anonymous caller could make
the hub read and parse any JSON it likes (50 MB cost 0.43 s and +110 MB RSS each) before
the 401. So, before the app sees a request that carries a body:

1. a declared `Content-Length` over `RECOGHUB_MAX_JSON_BYTES` (1 MiB) is 413 at once;
2. on `/api/v1` (all of it needs a token, but `/api/v1/ping`) the bearer token is
   authenticated: no token or an unknown one is 401, and the body is never read;
3. a body without a length (chunked) is read here up to the limit, 413 past it, and
   handed on to the app as it came.

Two routes bound their own bodies and are left alone: the relay (`.../recognize`, an
image up to `RECOGHUB_MAX_IMAGE_BYTES`, authenticated before its body is read; `.../check`
reads none) and a multipart dataset import, whose files Starlette spools to disk. A
prediction file's upload (`…/phases/{phase}/submissions`, any body but JSON) is bounded
by RECOGHUB_SUBMISSION_MAX_BYTES instead: a declared length over it is 413 here, and its
route counts the bytes as they come (gateway.challenges.file_routes).
"""

import re

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import Principal, authenticate
from gateway.deps import REQUEST_PRINCIPAL, bearer_token
from gateway.error_responses import hub_error_response
from gateway.errors import HubError, PayloadTooLarge, Unauthorized
from gateway.state import HubState

API_PREFIX = "/api/v1/"
PUBLIC_PATHS = frozenset({"/api/v1/ping"})
SELF_BOUNDED_PATH = re.compile(r"/api/v1/services/[^/]+/(?:recognize|check)")
UPLOAD_PATH = "/api/v1/datasets"
# A prediction file (SPEC §13): bounded by RECOGHUB_SUBMISSION_MAX_BYTES, counted by its
# route as it is received; a JSON body there (a live submission) is bounded as any.
SUBMISSION_PATH = re.compile(r"/api/v1/challenges/[^/]+/phases/[^/]+/submissions")


def _carries_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


def _media_type(headers: Headers) -> str:
    return headers.get("content-type", "").partition(";")[0].strip().lower()


def _principal(state: HubState, token: str | None) -> Principal:
    with state.sessions() as session:
        return authenticate(session, token, configured_admin=state.settings.admin_token)


class BodyGuard:
    """See the module doc. `max_bytes` bounds every body but the self-bounded routes'."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, submission_max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.submission_max_bytes = submission_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _carries_body(scope):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if SELF_BOUNDED_PATH.fullmatch(path):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        bounded = not (path == UPLOAD_PATH and _media_type(headers) == "multipart/form-data")
        declared = headers.get("content-length")
        if SUBMISSION_PATH.fullmatch(path) and _media_type(headers) != "application/json":
            bounded = False  # its route counts the bytes; the declared length first:
            if declared is not None and declared.strip().isdigit():
                if int(declared) > self.submission_max_bytes:
                    await _refuse(scope, receive, send, self._file_too_large(int(declared)))
                    return
        if bounded and declared is not None and declared.strip().isdigit():
            if int(declared) > self.max_bytes:
                await _refuse(scope, receive, send, self._too_large(int(declared)))
                return
        if path.startswith(API_PREFIX) and path not in PUBLIC_PATHS:
            try:
                principal = await self._authenticated(scope, headers)
            except HubError as exc:
                await _refuse(scope, receive, send, exc)
                return
            scope.setdefault("state", {})[REQUEST_PRINCIPAL] = principal
        if bounded and declared is None:
            messages = await _read_at_most(receive, self.max_bytes)
            if messages is None:
                await _refuse(scope, receive, send, self._too_large(None))
                return
            receive = _replay(messages, receive)
        await self.app(scope, receive, send)

    def _too_large(self, declared: int | None) -> PayloadTooLarge:
        size = "" if declared is None else f" ({declared} bytes)"
        return PayloadTooLarge(
            f"the request body{size} is over the hub's limit of {self.max_bytes} bytes "
            "for request bodies (RECOGHUB_MAX_JSON_BYTES)"
        )

    def _file_too_large(self, declared: int) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the prediction file ({declared} bytes) is over the hub's limit of "
            f"{self.submission_max_bytes} bytes (RECOGHUB_SUBMISSION_MAX_BYTES)"
        )

    @staticmethod
    async def _authenticated(scope: Scope, headers: Headers) -> Principal:
        token = bearer_token(headers)
        if token is None:
            raise Unauthorized("this route needs an Authorization: Bearer token")
        state: HubState = scope["app"].state.hub
        return await run_in_threadpool(_principal, state, token)


async def _read_at_most(receive: Receive, max_bytes: int) -> list[Message] | None:
    """The request's messages up to the end of its body; None once it passes `max_bytes`."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages  # the client went away: the app sees it as it would have
        size += len(message.get("body", b""))
        if size > max_bytes:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


async def _refuse(scope: Scope, receive: Receive, send: Send, error: HubError) -> None:
    """Answer `error` as the app would (`{"detail", "code"}`), leaving the body unread."""
    await hub_error_response(error)(scope, receive, send)

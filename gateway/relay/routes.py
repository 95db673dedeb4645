"""`POST /api/v1/services/{guid}/recognize` and `.../check`: thin routes over `relay.service`.

Both are async and take no FastAPI dependencies: a plain (sync) dependency such as
`HubStateDep` or `PrincipalDep` runs in the threadpool, and the relay's budget (SPEC §8)
has no room for a thread hop per dependency. The database work is one threadpool call
inside `relay.service`, and usually a cache hit.

`recognize` is also served past FastAPI's router (`RecognizeShortcut`): finding the
route among the hub's included routers, solving its parameters and the exception
wrappers around it cost more hub CPU than the rest of a relay's own work but the
outgoing request.
"""

import re
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import rate_limit
from gateway.auth import hash_token
from gateway.deps import bearer_token
from gateway.error_responses import hub_error_response
from gateway.errors import HubError, InvalidInput, PayloadTooLarge, Unauthorized
from gateway.images import too_large_text
from gateway.openapi import errors
from gateway.protocol import signing
from gateway.relay import service as relay
from gateway.relay.schemas import CheckRead, RecognizeRead
from gateway.state import HubState

router = APIRouter(prefix="/services", tags=["relay"])

_IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The image bytes (JPEG or PNG).",
        "content": {
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _hub(request: Request) -> HubState:
    state: HubState = request.app.state.hub
    return state


def _token(request: Request) -> str:
    token = bearer_token(request.headers)
    if token is None:
        raise Unauthorized("this route needs an Authorization: Bearer token")
    return token


def _refuse_declared_size(request: Request, max_bytes: int) -> None:
    """413 at once when the Content-Length is over the limit (nothing read)."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError:
        raise InvalidInput(f"Content-Length {declared!r} is not a number") from None
    if length > max_bytes:
        raise PayloadTooLarge(too_large_text(length, max_bytes))


async def _read_body(request: Request, *, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `max_bytes` (a declared
    length was checked before; the server delivers no more than it).

    Read from the ASGI messages themselves: Starlette's `body()` goes through an async
    generator, a cost the relay pays on every request (SPEC §8)."""
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(too_large_text(None, max_bytes))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@router.post(
    "/{guid}/recognize",
    response_model=RecognizeRead,
    openapi_extra=_IMAGE_BODY,
    responses=errors(
        401,
        403,
        404,
        409,
        413,
        415,
        429,
        502,
        504,
        described={
            409: "The service is disabled (code `service_disabled`) or has no endpoints "
            "(code `no_instances`).",
            413: "The image is over RECOGHUB_MAX_IMAGE_BYTES, or decodes to more than "
            "RECOGHUB_MAX_IMAGE_PIXELS.",
        },
    ),
)
async def recognize(guid: str, request: Request) -> Response:
    """Send one image to the service through the hub, as a run would, and show the answer.

    Allowed for the organizer and the owning provider (any provider when the organizer
    sets `RECOGHUB_RELAY_OPEN_TO_ALL_PROVIDERS`).
    """
    state = _hub(request)
    settings = state.settings
    token = _token(request)
    _refuse_declared_size(request, settings.max_image_bytes)
    key_digest = hash_token(token)
    target = await relay.relay_target(state, token=token, guid=guid, digest=key_digest)
    await rate_limit.admit(state, "relay", token=token, digest=key_digest)
    body = await _read_body(request, max_bytes=settings.max_image_bytes)
    # Hashed once: the image check remembers by it and the request's signature covers it.
    digest = signing.body_digest(body)
    image = await relay.checked_image(
        body,
        digest=digest,
        max_bytes=settings.max_image_bytes,
        max_pixels=settings.max_image_pixels,
    )
    answer = await relay.relay(state.dispatcher, target, image, digest=digest)
    # Serialized here, once: returning the model would have FastAPI validate it again.
    read = RecognizeRead.of(answer, service_guid=target.service_guid)
    return Response(read.model_dump_json(), media_type="application/json")


RECOGNIZE_PATH = re.compile(r"/api/v1/services/(?P<guid>[^/]+)/recognize")


class RecognizeShortcut:
    """Serves `POST /api/v1/services/{guid}/recognize` with `recognize` directly, past
    FastAPI's routing; any other request goes on to the app.

    The route stays where it is: it documents the relay in the OpenAPI schema and
    answers any other method (405). Installed inside the hub's middlewares, so the
    answers are marked nosniff and an unexpected error is the catch-all's 500 with its
    request id; a HubError answers as the app's exception handler would.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = (
            RECOGNIZE_PATH.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if matched is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await recognize(matched["guid"], Request(scope, receive))
        except HubError as exc:
            response = hub_error_response(exc)
        await response(scope, receive, send)


@router.post("/{guid}/check", response_model=CheckRead, responses=errors(401, 403, 404, 429))
async def check(guid: str, request: Request) -> CheckRead:
    """Ping every instance of the service and send each one probe image, concurrently.

    Allowed for the organizer and the owning provider; works on a disabled service too.
    """
    state = _hub(request)
    settings = state.settings
    token = _token(request)
    target = await relay.check_target(state, token=token, guid=guid)
    await rate_limit.admit(state, "check", token=token)
    return await relay.check_service(state.dispatcher, target, timeout_s=settings.request_timeout_s)

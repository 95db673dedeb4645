"""The OpenAPI schema at `/openapi.json` says what the API really answers (SPEC §3, §9).

- Errors: every error body is `ErrorRead` (`{"detail", "code"}`), the relay's recognizer
  failures `RelayErrorRead`. FastAPI would document a 422 of its own (a list of
  problems); the hub answers one string instead (gateway.app), so each route declares
  its errors with `errors(...)` and FastAPI's list form appears nowhere.
- Status codes: each route lists what it can answer, the body guard's included (401 and
  413 for a route that takes a body; see gateway.middleware.body_guard).
- Content types: non-JSON answers (Prometheus text, CSV, JSON lines) are declared by
  their routes.
- Timestamps are `date-time` with their offset (gateway.wire.UtcDateTime).
- Authentication: the bearer token, declared as a security scheme, so `/docs` offers
  "Authorize" and clients know which routes need it.
"""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field


class ErrorRead(BaseModel):
    """Every error of the API: what is wrong, and a stable code to act on."""

    detail: str = Field(description="What went wrong and, where it helps, what to do.")
    code: str = Field(description="A stable machine code: not_found, invalid_input, ...")


class RelayErrorRead(ErrorRead):
    """A relayed request the recognizer failed: `code` is the outcome (SPEC §2)."""

    request_id: str
    raw: str | None = Field(description="The start of what the recognizer answered, if any.")


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The body cannot be read as JSON text (it is not UTF-8).",
    401: "No bearer token, or an unknown one.",
    403: "The token may not do this.",
    404: "Nothing by that id or GUID (code `wrong_guid_kind`: a GUID of the other kind).",
    409: "Conflicts with the current state; `code` and `detail` say how.",
    413: "The request body is over the hub's limit (RECOGHUB_MAX_JSON_BYTES).",
    415: "Not a JPEG or PNG image.",
    422: "Invalid input: `detail` names each bad field and why, in one string.",
    429: "Past a rate limit; `Retry-After` says when to try again.",
    502: "The recognizer failed; `code` is the outcome.",
    504: "The recognizer did not answer in time (code `timeout`).",
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Whole seconds until the next request is allowed.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def errors(
    *statuses: int, described: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route answering the error `statuses` (JSON `ErrorRead`);
    `described` replaces the usual description of some."""
    described = described or {}
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "model": RelayErrorRead if status in (502, 504) else ErrorRead,
            "description": described.get(status, ERROR_DESCRIPTIONS[status]),
        }
        if status == 429:
            response["headers"] = RETRY_AFTER
        responses[status] = response
    return responses


def text_response(description: str, *media_types: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a 200 whose body is text in one of `media_types`."""
    content = {media: {"schema": {"type": "string"}} for media in media_types}
    return {200: {"description": description, "content": content}}


ERROR_REF = "#/components/schemas/ErrorRead"
BEARER = "bearer"
# Routes anyone may call; `/metrics` may be either (RECOGHUB_METRICS_REQUIRE_ADMIN).
OPEN_PATHS = frozenset({"/api/v1/ping"})
MAYBE_OPEN_PATHS = frozenset({"/metrics"})


def _errors_as_json(responses: dict[str, Any]) -> None:
    """Every error answer is JSON `ErrorRead`, whatever the route's own media type; a 422
    FastAPI added (its list form) becomes the hub's."""
    for status, response in responses.items():
        if int(status) < 400:
            continue
        schemas = [media.get("schema", {}) for media in response.get("content", {}).values()]
        schema = schemas[0] if schemas else {"$ref": ERROR_REF}
        if schema.get("$ref", "").endswith("/HTTPValidationError"):
            schema = {"$ref": ERROR_REF}
            response["description"] = ERROR_DESCRIPTIONS[422]
        response["content"] = {"application/json": {"schema": schema}}


def install_openapi(app: FastAPI) -> None:
    """Generate the schema once, with the bearer scheme on the routes that need it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The organizer's admin token, or a provider's API key.",
                }
            }
            for path, operations in schema["paths"].items():
                for operation in operations.values():
                    _errors_as_json(operation["responses"])
                    if path in MAYBE_OPEN_PATHS:
                        operation["security"] = [{}, {BEARER: []}]
                    elif path not in OPEN_PATHS:
                        operation["security"] = [{BEARER: []}]
            for unused in ("HTTPValidationError", "ValidationError"):
                schema["components"]["schemas"].pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""How a `HubError` leaves the hub: `{"detail", "code"}` with its status and headers, and
the fields some errors add (SPEC §3). The app's exception handler, the body guard and the
relay's shortcut past the router all answer through `hub_error_response`."""

from starlette.responses import JSONResponse

from gateway.errors import (
    FileRejected,
    HubError,
    OutsideWindow,
    QuotaExceeded,
    RecognizerFailed,
)


def hub_error_response(exc: HubError) -> JSONResponse:
    body: dict[str, object] = {"detail": exc.detail, "code": exc.code}
    if isinstance(exc, RecognizerFailed):
        body.update(request_id=exc.request_id, raw=exc.error.raw)
    elif isinstance(exc, QuotaExceeded):
        body["next_allowed_at"] = exc.next_allowed_at
    elif isinstance(exc, FileRejected):
        body["rejection"] = exc.rejection
    elif isinstance(exc, OutsideWindow):
        body.update(opens_at=exc.opens_at, closes_at=exc.closes_at)
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)

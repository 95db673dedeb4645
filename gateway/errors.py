"""The hub's errors, as data.

Two trees. What a recognizer did wrong is an outcome of a request (SPEC §2)::

    RecognizerError                 outcome (str)      retried
     ├── RecognizerTimeout          "timeout"          yes
     ├── RecognizerConnectError     "connect_error"    yes
     ├── RecognizerHttpError        "http_error"       5xx and 429 only; carries .status
     ├── RecognizerBadFormat        "bad_format"       no; carries the entry and text
     └── RecognizerTooLarge         "too_large"        no

Two outcomes come from the hub itself, never from a request, and are never retried:
`unreachable` (not sent: the service stayed down past the breaker's give-up time, SPEC §9)
and `missed` (not answered by the run's deadline). Like every outcome but `ok`, they count
as wrong in the scores.

What a caller of the hub's API did wrong becomes a JSON error `{"detail", "code"}`::

    HubError                        500 internal
     ├── NotFound                   404 not_found
     │    └── WrongGuidKind         404 wrong_guid_kind (a provider GUID given for a service)
     ├── Unauthorized               401 unauthorized
     ├── Forbidden                  403 forbidden (hidden_results: a team asking for an
     │                                  evaluation's per-image results or failures)
     ├── Conflict                   409 conflict
     │    └── OutsideWindow         409 phase_not_open / phase_closed; carries the window
     ├── InvalidInput               422 invalid_input
     │    └── FileRejected          422 file_rejected; carries .rejection (SPEC §13: the
     │                                  line or array and what was expected)
     ├── PayloadTooLarge            413 too_large
     ├── UnsupportedMedia           415 not_an_image
     ├── QuotaExceeded              429 quota_exceeded (Retry-After when a next is allowed)
     ├── RateLimited                429 rate_limited; carries .retry_after_s (Retry-After)
     ├── TooManyConnections         429 too_many_connections (dial-out caps, Retry-After)
     └── RecognizerFailed           502 <outcome> / 504 timeout (wraps a RecognizerError)
"""

import math
from enum import StrEnum


class Outcome(StrEnum):
    OK = "ok"
    TIMEOUT = "timeout"
    CONNECT_ERROR = "connect_error"
    HTTP_ERROR = "http_error"
    BAD_FORMAT = "bad_format"
    TOO_LARGE = "too_large"
    UNREACHABLE = "unreachable"
    MISSED = "missed"


OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)


class RecognizerError(Exception):
    """A recognizer's request ended without a valid answer."""

    outcome: Outcome = Outcome.CONNECT_ERROR
    retryable = True

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.raw: str | None = None

    def with_raw(self, raw: str) -> "RecognizerError":
        """Keep the (truncated) body the recognizer sent, for logs and the CLI."""
        self.raw = raw
        return self


class RecognizerTimeout(RecognizerError):
    outcome = Outcome.TIMEOUT


class RecognizerConnectError(RecognizerError):
    outcome = Outcome.CONNECT_ERROR


# A 401 means the recognizer refused the hub's signature (SPEC §2); the fix is always the
# same, and the recognizer's own body ("signature does not match") does not say it.
SIGNATURE_REJECTED = (
    "the recognizer rejected the hub's signature: start it with this service's signing "
    "secret (`--secret` / its environment variable)"
)


class RecognizerHttpError(RecognizerError):
    """A status other than 200; the detail of a 401 starts with SIGNATURE_REJECTED."""

    outcome = Outcome.HTTP_ERROR

    def __init__(self, detail: str, *, status: int) -> None:
        if status == 401:
            detail = f"{SIGNATURE_REJECTED}; {detail}"
        super().__init__(detail)
        self.status = status
        self.retryable = status >= 500 or status == 429


class RecognizerBadFormat(RecognizerError):
    outcome = Outcome.BAD_FORMAT
    retryable = False


class RecognizerTooLarge(RecognizerError):
    outcome = Outcome.TOO_LARGE
    retryable = False


class HubError(Exception):
    """An error the API reports as `{"detail", "code"}` with `status`."""

    status = 500
    code = "internal"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the JSON body."""
        return {}


class NotFound(HubError):
    status = 404
    code = "not_found"


class WrongGuidKind(NotFound):
    code = "wrong_guid_kind"


class Unauthorized(HubError):
    status = 401
    code = "unauthorized"


class Forbidden(HubError):
    status = 403
    code = "forbidden"


class Conflict(HubError):
    status = 409
    code = "conflict"


class OutsideWindow(Conflict):
    """A submission to a challenge phase before it opens or after it closes (SPEC §12);
    carries the window, ISO 8601 with `Z`."""

    def __init__(self, detail: str, *, code: str, opens_at: str, closes_at: str) -> None:
        super().__init__(detail, code=code)
        self.opens_at = opens_at
        self.closes_at = closes_at


class InvalidInput(HubError):
    status = 422
    code = "invalid_input"


class FileRejected(InvalidInput):
    """A prediction file refused by validation (SPEC §13); `rejection` is the refusal's
    fields (`gateway.offline.errors.SubmissionRejected.as_dict()`). It counts for nothing."""

    code = "file_rejected"

    def __init__(self, detail: str, *, rejection: dict[str, object]) -> None:
        super().__init__(detail)
        self.rejection = rejection


class PayloadTooLarge(HubError):
    status = 413
    code = "too_large"


class UnsupportedMedia(HubError):
    status = 415
    code = "not_an_image"


class QuotaExceeded(HubError):
    """A provider used up its quota (team-started dry runs, a phase's submission limit);
    says when the next is allowed (None: never, e.g. a phase's total used up)."""

    status = 429
    code = "quota_exceeded"

    def __init__(
        self, detail: str, *, retry_after_s: int | None, next_allowed_at: str | None
    ) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
        self.next_allowed_at = next_allowed_at

    @property
    def headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(self.retry_after_s)}


class RateLimited(HubError):
    """Past a caller's rate limit; `retry_after_s` is when one request is allowed again."""

    status = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after_s: float) -> None:
        super().__init__(detail)
        # Retry-After takes whole seconds; rounding down would invite an early retry.
        self.retry_after_s = max(1, math.ceil(retry_after_s))

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class TooManyConnections(HubError):
    """A dial-out connection past a cap of the hub process (SPEC §10); a connection may
    close meanwhile, so the caller may try again later."""

    status = 429
    code = "too_many_connections"
    retry_after_s = 30

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class RecognizerFailed(HubError):
    """A relayed request that ended in a recognizer failure (502, or 504 on timeout)."""

    def __init__(self, error: RecognizerError, *, request_id: str) -> None:
        super().__init__(error.detail, code=error.outcome.value)
        self.status = 504 if error.outcome is Outcome.TIMEOUT else 502
        self.error = error
        self.request_id = request_id

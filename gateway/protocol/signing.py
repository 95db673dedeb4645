"""Request signing of protocol v1 (SPEC §2): HMAC-SHA256 over timestamp, id and body hash."""

import hashlib
import hmac
import math
import time

SIGNATURE_VERSION = "v1"
HEADER_REQUEST_ID = "X-Recog-Request-Id"
HEADER_SERVICE_GUID = "X-Recog-Service-Guid"
HEADER_PROVIDER_GUID = "X-Recog-Provider-Guid"
HEADER_TIMESTAMP = "X-Recog-Timestamp"
HEADER_SIGNATURE = "X-Recog-Signature"


def body_digest(body: bytes) -> str:
    """Hex SHA-256 of a request body; the hub computes it once per image."""
    return hashlib.sha256(body).hexdigest()


class Signer:
    """Signs requests under one secret; the keyed HMAC state is prepared once."""

    __slots__ = ("_mac",)

    def __init__(self, secret: str) -> None:
        self._mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def sign(self, *, timestamp: str, request_id: str, digest: str) -> str:
        """The `X-Recog-Signature` value for one request."""
        mac = self._mac.copy()
        mac.update(f"{timestamp}.{request_id}.{digest}".encode())
        return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def sign(secret: str, *, timestamp: str, request_id: str, digest: str) -> str:
    """The `X-Recog-Signature` value for one request."""
    return Signer(secret).sign(timestamp=timestamp, request_id=request_id, digest=digest)


def verify(
    secret: str,
    *,
    timestamp: str,
    request_id: str,
    body: bytes,
    signature: str,
    max_skew_s: float = 300.0,
    now: float | None = None,
) -> str | None:
    """Check a signed request; None when valid, else the reason it is not."""
    try:
        sent_at = float(timestamp)
    except ValueError:
        return "timestamp is not a number"
    if not math.isfinite(sent_at):
        return "timestamp is not a finite number"
    current = time.time() if now is None else now
    if abs(current - sent_at) > max_skew_s:
        return f"timestamp is {current - sent_at:.0f}s away from now"
    expected = sign(secret, timestamp=timestamp, request_id=request_id, digest=body_digest(body))
    if not hmac.compare_digest(expected, signature):
        return "signature does not match"
    return None

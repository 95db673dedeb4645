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


def sign(secret: str, *, timestamp: str, request_id: str, digest: str) -> str:
    """The `X-Recog-Signature` value for one request."""
    message = f"{timestamp}.{request_id}.{digest}".encode()
    mac = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={mac}"


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

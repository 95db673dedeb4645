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
# SHA-256's block size, and HMAC's key pads as byte translations.
_BLOCK = 64
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def body_digest(body: bytes) -> str:
    """Hex SHA-256 of a request body; the hub computes it once per image."""
    return hashlib.sha256(body).hexdigest()


class Signer:
    """Signs requests under one secret, as `hmac` does (RFC 2104), from the keyed inner and
    outer SHA-256 states prepared once: copying them costs the sender half of what
    copying an `hmac.HMAC` does."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, secret: str) -> None:
        key = secret.encode()
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def sign(self, *, timestamp: str, request_id: str, digest: str) -> str:
        """The `X-Recog-Signature` value for one request."""
        inner = self._inner.copy()
        inner.update(f"{timestamp}.{request_id}.{digest}".encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return f"{SIGNATURE_VERSION}={outer.hexdigest()}"


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

"""One webhook post: signed like a request to a recognizer (SPEC §2), sent through the
hub's policy-checked client (SPEC §9: only allowed addresses, after DNS too; no
redirects; the answer read only up to `ANSWER_LIMIT` bytes; within the timeout), and
what its answer means for the delivery.

Headers: `X-Recog-Event` (the kind), `X-Recog-Request-Id` (the same on every attempt of
one delivery, so a receiver can drop a repeat), `X-Recog-Timestamp` and, when there is a
secret, `X-Recog-Signature` = `v1=` + hex HMAC-SHA256 of `timestamp.request_id.sha256(body)`:
`gateway.protocol.signing.verify` checks it.
"""

import json
import time
from dataclasses import dataclass
from typing import Any

from gateway.dispatch.client import HttpClient
from gateway.dispatch.policy import REFUSED_DETAIL, AddressNotAllowed
from gateway.errors import RecognizerTooLarge
from gateway.protocol.signing import (
    HEADER_REQUEST_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    body_digest,
    sign,
)

HEADER_EVENT = "X-Recog-Event"
# A receiver's answer matters only by its status: a little of it is kept for the record.
ANSWER_LIMIT = 1024
# Back-off between attempts: `retry_s` doubling, at most this.
MAX_BACKOFF_S = 600.0


@dataclass(frozen=True, slots=True)
class Answer:
    """How one attempt went: `status` None when nothing answered."""

    status: int | None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Worth another attempt: nothing answered (but the policy did not refuse), or
        the receiver is failing or busy (5xx, 429). A 3xx (never followed) or another
        4xx would answer the same again."""
        if self.status is None:
            return self.error is None or REFUSED_DETAIL not in self.error
        return self.status >= 500 or self.status == 429

    def describe(self) -> str:
        if self.status is not None:
            return f"HTTP {self.status}"
        return self.error or "no answer"


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def request_id(delivery_id: int) -> str:
    return f"notification-{delivery_id}"


async def post_event(
    http: HttpClient,
    *,
    url: str,
    body: bytes,
    kind: str,
    request_id: str,
    secret: str | None,
    timeout_s: float,
) -> Answer:
    """Post one event to `url`; never raises for what the receiver or network did."""
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        HEADER_EVENT: kind,
        HEADER_REQUEST_ID: request_id,
        HEADER_TIMESTAMP: timestamp,
    }
    if secret:
        headers[HEADER_SIGNATURE] = sign(
            secret, timestamp=timestamp, request_id=request_id, digest=body_digest(body)
        )
    try:
        reply = await http.fetch(
            "POST",
            url,
            body=body,
            headers=headers,
            timeout_s=timeout_s,
            limit=ANSWER_LIMIT,
            preview=ANSWER_LIMIT,
        )
    except TimeoutError:
        return Answer(None, f"no answer within {timeout_s:g} s")
    except AddressNotAllowed:
        return Answer(None, f"{REFUSED_DETAIL} (RECOGHUB_ENDPOINT_ALLOW)")
    except RecognizerTooLarge:
        # A 200 with a long body: the event arrived, the body is not the hub's concern.
        return Answer(200)
    except OSError as exc:
        return Answer(None, str(exc) or type(exc).__name__)
    return Answer(reply.status)


def backoff_s(*, attempts: int, retry_s: float) -> float:
    """Seconds before the next attempt, after `attempts` made."""
    return float(min(MAX_BACKOFF_S, retry_s * 2 ** max(0, attempts - 1)))

"""What dispatch is asked and answers (SPEC §2): where to send, one attempt, the outcome
after retries, a ping's result; shared by the dispatcher and the two kinds of instance
it sends to (`gateway.dispatch.endpoints`, `gateway.dispatch.connections`)."""

import secrets
import time
from dataclasses import dataclass, field

from gateway.dispatch.protocols.recoghub_v1 import RECOGHUB, Adapter
from gateway.errors import Outcome, RecognizerError
from gateway.protocol import signing
from gateway.protocol.result_string import Tag

# What an error answer may show of its body (its `raw` and detail): enough for a team's
# own error message, too little to make the hub a reader of whatever else answers at a
# registered address. A redirect shows none: the hub never fetches where it points.
ERROR_PREVIEW_BYTES = 200


@dataclass(frozen=True, slots=True)
class Target:
    """Where and as whom to send: a service with its instances and signing secret."""

    service_guid: str
    provider_guid: str
    instances: tuple[str, ...]
    signing_secret: str
    # How to talk to the instances (SPEC §11): recoghub-v1 unless the service says otherwise.
    adapter: Adapter = RECOGHUB


@dataclass(slots=True)
class Attempt:
    number: int
    instance: str
    outcome: Outcome
    latency_ms: float | None
    status: int | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "n": self.number,
            "instance": self.instance,
            "outcome": self.outcome.value,
            "latency_ms": self.latency_ms,
            "status": self.status,
            "detail": self.detail,
        }


@dataclass(slots=True)
class Answer:
    """The outcome of one request after retries; `latency_ms` is the last attempt's."""

    request_id: str
    outcome: Outcome
    tags: list[Tag]
    raw: str | None
    latency_ms: float | None
    status: int | None
    detail: str | None
    attempts: list[Attempt] = field(default_factory=list)
    error: RecognizerError | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


@dataclass(frozen=True, slots=True)
class PingResult:
    instance: str
    reachable: bool
    latency_ms: float | None
    status: int | None
    detail: str | None
    outcome: Outcome = Outcome.OK


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs three times as much
class Request:
    """One attempt's recognize request, as either kind of instance is sent it."""

    request_id: str
    image: bytes
    content_type: str
    digest: str
    timeout: float
    signer: signing.Signer

    def signed(self, digest: str) -> tuple[str, str]:
        """The timestamp and signature of the body of SHA-256 hex `digest`, now."""
        timestamp = str(int(time.time()))
        return timestamp, self.signer.sign(
            timestamp=timestamp, request_id=self.request_id, digest=digest
        )


@dataclass(slots=True)
class Exchange:
    """What one attempt has seen so far, kept when it fails: when the team's part of the
    wait started (a wait for a connection's free slot is the hub's own queue) and the
    status it answered, if it answered."""

    started: float = field(default_factory=time.perf_counter)
    status: int | None = None

    def start(self) -> None:
        self.started = time.perf_counter()


def new_request_id() -> str:
    """Random, never derived from a dataset key, file name or label."""
    return secrets.token_hex(16)


def status_detail(status: int, preview: bytes) -> str:
    """What an answer other than 200 says, its body shown short and on one line."""
    if 300 <= status < 400:
        return f"recognizer answered HTTP {status}, a redirect (not followed)"
    text = preview.decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return f"recognizer answered HTTP {status}: {text or '(empty body)'}"

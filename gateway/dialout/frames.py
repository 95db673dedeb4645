"""The messages of the dial-out protocol `recoghub-ws/1` (SPEC §10), both directions.

Text messages are JSON objects with a `type`: `hello` (recognizer → hub, first),
`welcome` and `hubs` (hub → recognizer), `ping` (hub → recognizer) and `result`
(recognizer → hub). A request is one binary message: a 4-byte big-endian header length,
the UTF-8 JSON header `{"type": "recognize", "request_id", "timestamp", "signature",
"content_type"}`, then the image bytes.

Everything read from the other side is bounded and checked here; what is wrong raises
`FrameError`, which names the request when it could be read (so that one request fails
with the outcome a bad HTTP answer would get, and the others go on).
"""

import json
import struct
from dataclasses import dataclass
from typing import Any, Final

from gateway.errors import RecognizerBadFormat, RecognizerError, RecognizerTooLarge
from gateway.protocol.result_string import MAX_RESULT_BYTES

PROTOCOL: Final = "recoghub-ws/1"
CONNECT_PATH: Final = "/api/v1/connect"

# Close codes of a refused hello, each sent with a reason that says what to do.
# The hub now refuses a bad key before the upgrade (HTTP 401); 4401 is what hubs before
# issue 17 sent, still understood by the sample recognizer.
BAD_KEY: Final = 4401
OTHER_PROVIDER: Final = 4403
UNKNOWN_SERVICE: Final = 4404
SERVICE_DISABLED: Final = 4409
BAD_HELLO: Final = 4400
# The service already has as many connections to this hub process as the organizer
# allows (RECOGHUB_DIALOUT_CONNECTIONS_PER_SERVICE); the recognizer may try again later.
TOO_MANY_CONNECTIONS: Final = 4429
# Close of a live connection whose message names no request, or that sends too many
# results for requests it was never sent, or JSON nested too deeply.
POLICY_VIOLATION: Final = 1008

# A result holds at most 64 KiB of result string; JSON escaping may make it up to six
# times longer (\\uXXXX), plus the envelope. Longer messages are refused by the server
# before they are read whole (uvicorn's ws_max_size), so memory stays bounded.
MAX_MESSAGE_BYTES: Final = 6 * MAX_RESULT_BYTES + 4096
MAX_HEADER_BYTES: Final = 4096
MAX_CLOSE_REASON_BYTES: Final = 123  # a control frame's payload, less the code
MAX_HELLO_CONCURRENCY: Final = 1024

# WebSocket keep-alive (SPEC §10): a ping every 10 s, dead after 30 s without its pong.
PING_INTERVAL_S: Final = 10.0
PING_TIMEOUT_S: Final = 30.0


def close_reason(text: str) -> str:
    """`text` cut to what a close frame carries (123 bytes of UTF-8)."""
    return text.encode()[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")


def uvicorn_ws_options() -> dict[str, Any]:
    """The uvicorn.Config keywords every hub process that accepts connections uses."""
    return {
        "ws": "websockets-sansio",
        # No permessage-deflate (SPEC §10): uvicorn inflates every frame of a read before
        # the app sees one, and 464 compressed bytes become a 389 KB message, so a
        # stranger's single write could take gigabytes. Results are small text anyway.
        "ws_per_message_deflate": False,
        "ws_max_size": MAX_MESSAGE_BYTES,
        "ws_ping_interval": PING_INTERVAL_S,
        "ws_ping_timeout": PING_TIMEOUT_S,
    }


class NestingError(ValueError):
    """A message whose JSON is nested deeper than the parser goes (a hostile client's
    `[[[[…`): refused with close 1008 and one log line, never a traceback."""


class FrameError(Exception):
    """A message that breaks the protocol; `request_id` is set when it names a request,
    and `error` is the outcome that request gets."""

    def __init__(self, error: RecognizerError, request_id: str | None = None) -> None:
        super().__init__(error.detail)
        self.error = error
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Hello:
    service_guid: str
    instance: str
    max_concurrency: int


@dataclass(frozen=True, slots=True)
class Reply:
    """A recognizer's `result`: `body` is the UTF-8 answer (at most 64 KiB)."""

    request_id: str
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Request:
    """A request frame as the recognizer reads it."""

    request_id: str
    timestamp: str
    signature: str
    content_type: str
    image: bytes


def _object(text: str | bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except RecursionError:
        # The C parser stops at the interpreter's recursion limit (about 1,000 levels)
        # having read no further than that: bounded work, so no scan is needed first.
        raise NestingError(f"{what} is JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise FrameError(RecognizerBadFormat(f"{what} is not JSON")) from None
    if not isinstance(value, dict):
        raise FrameError(RecognizerBadFormat(f"{what} is not a JSON object"))
    return value


def parse_hello(text: str) -> Hello:
    """The first message of a connection; raises ValueError saying what is wrong."""
    try:
        message = _object(text, "the first message")
    except FrameError as exc:
        raise ValueError(f"{exc.error.detail}; send the hello message first") from None
    if message.get("type") != "hello":
        raise ValueError('the first message must be {"type": "hello", ...}')
    if message.get("protocol") != PROTOCOL:
        raise ValueError(f'protocol must be "{PROTOCOL}"; update recoghub-recognizer')
    guid, instance = message.get("service_guid"), message.get("instance", "")
    concurrency = message.get("max_concurrency", 1)
    if not isinstance(guid, str) or not guid.strip() or len(guid) > 100:
        raise ValueError("service_guid must be the service's GUID (a string)")
    if not isinstance(instance, str) or len(instance) > 200:
        raise ValueError("instance must be a short name (a string of at most 200 characters)")
    if type(concurrency) is not int or not 1 <= concurrency <= MAX_HELLO_CONCURRENCY:
        raise ValueError(f"max_concurrency must be an integer from 1 to {MAX_HELLO_CONCURRENCY}")
    return Hello(guid.strip(), instance, concurrency)


def hello(*, service_guid: str, instance: str, max_concurrency: int) -> str:
    return json.dumps(
        {
            "type": "hello",
            "protocol": PROTOCOL,
            "service_guid": service_guid,
            "instance": instance,
            "max_concurrency": max_concurrency,
        }
    )


def request_frame(
    *, request_id: str, timestamp: str, signature: str, content_type: str, image: bytes
) -> bytes:
    """The binary message of one request."""
    header = json.dumps(
        {
            "type": "recognize",
            "request_id": request_id,
            "timestamp": timestamp,
            "signature": signature,
            "content_type": content_type,
        },
        separators=(",", ":"),
    ).encode()
    return struct.pack(">I", len(header)) + header + image


def parse_request(frame: bytes) -> Request:
    """A request frame (recognizer side); raises ValueError saying what is wrong."""
    if len(frame) < 4:
        raise ValueError("a request frame starts with a 4-byte header length")
    (length,) = struct.unpack_from(">I", frame)
    if length > MAX_HEADER_BYTES or 4 + length > len(frame):
        raise ValueError(f"header length {length} does not fit the frame")
    try:
        header = _object(frame[4 : 4 + length], "the request header")
    except FrameError as exc:
        raise ValueError(exc.error.detail) from None
    fields = ("request_id", "timestamp", "signature", "content_type")
    values = [header.get(name) for name in fields]
    strings = [v for v in values if isinstance(v, str)]
    if header.get("type") != "recognize" or len(strings) != len(fields):
        raise ValueError(f'the header must be {{"type": "recognize", {", ".join(fields)}}}')
    request_id, timestamp, signature, content_type = strings
    return Request(request_id, timestamp, signature, content_type, frame[4 + length :])


def ping(request_id: str) -> str:
    return json.dumps({"type": "ping", "request_id": request_id})


def result(*, request_id: str, status: int, body: str) -> str:
    return json.dumps({"type": "result", "request_id": request_id, "status": status, "body": body})


def parse_reply(text: str) -> Reply:
    """A recognizer's answer (hub side). Raises FrameError: with the request id when the
    message names one (bad_format, too_large for that request), without when it does not."""
    message = _object(text, "a message from the recognizer")
    request_id = message.get("request_id")
    if message.get("type") != "result" or not isinstance(request_id, str):
        raise FrameError(
            RecognizerBadFormat('expected {"type": "result", "request_id", "status", "body"}')
        )
    status, body = message.get("status"), message.get("body", "")
    if type(status) is not int or not 100 <= status <= 599:
        raise FrameError(
            RecognizerBadFormat(f"result status must be an HTTP status code, not {status!r:.40}"),
            request_id,
        )
    if not isinstance(body, str):
        raise FrameError(RecognizerBadFormat("result body must be a string"), request_id)
    try:
        data = body.encode()
    except UnicodeEncodeError:
        raise FrameError(
            RecognizerBadFormat("result body is not valid UTF-8"), request_id
        ) from None
    if len(data) > MAX_RESULT_BYTES and status == 200:
        raise FrameError(
            RecognizerTooLarge(
                f"answer is {len(data)} bytes, over the {MAX_RESULT_BYTES}-byte limit"
            ),
            request_id,
        )
    return Reply(request_id, status, data)


def parse_hub_message(text: str) -> dict[str, Any]:
    """A text message from the hub (recognizer side); raises ValueError."""
    try:
        return _object(text, "a message from the hub")
    except FrameError as exc:
        raise ValueError(exc.error.detail) from None

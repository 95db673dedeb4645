"""The messages of recoghub-ws/1 (SPEC §10), read and written on both sides."""

import json

import pytest

from gateway.dialout import frames
from gateway.dialout.frames import FrameError
from gateway.errors import Outcome
from gateway.protocol.result_string import MAX_RESULT_BYTES
from gateway.protocol.signing import body_digest, verify
from sample_recognizer.dialout import backoff, connect_url


def test_a_request_frame_carries_the_signed_headers_and_the_image() -> None:
    image = b"\x89PNG fake image bytes"
    frame = frames.request_frame(
        request_id="r1", timestamp="1700000000", signature="v1=ab", content_type="image/png",
        image=image,
    )  # fmt: skip
    length = int.from_bytes(frame[:4], "big")
    header = json.loads(frame[4 : 4 + length])
    assert header == {
        "type": "recognize",
        "request_id": "r1",
        "timestamp": "1700000000",
        "signature": "v1=ab",
        "content_type": "image/png",
    }
    request = frames.parse_request(frame)
    assert request.image == image and request.request_id == "r1"


def test_the_signature_is_the_one_of_http_requests() -> None:
    from gateway.protocol.signing import sign

    image = b"pixels"
    signature = sign("s3cret", timestamp="1700000000", request_id="r1", digest=body_digest(image))
    request = frames.parse_request(
        frames.request_frame(
            request_id="r1",
            timestamp="1700000000",
            signature=signature,
            content_type="image/png",
            image=image,
        )  # fmt: skip
    )
    assert verify(
        "s3cret", timestamp=request.timestamp, request_id=request.request_id,
        body=request.image, signature=request.signature, now=1700000000,
    ) is None  # fmt: skip


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (b"\x00\x00", "4-byte header length"),
        (b"\x00\x00\x10\x00{}", "does not fit"),
        (b"\x00\x00\x00\x02[]", "not a JSON object"),
        (b'\x00\x00\x00\x10{"type": "ping"}', "the header must be"),
    ],
)
def test_a_bad_request_frame_is_refused_with_the_reason(frame: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        frames.parse_request(frame)


def test_a_result_is_bounded_and_classified_like_an_http_answer() -> None:
    reply = frames.parse_reply(frames.result(request_id="r", status=200, body="cat:1"))
    assert (reply.request_id, reply.status, reply.body) == ("r", 200, b"cat:1")

    cases = [
        (frames.result(request_id="r", status=200, body="x" * (MAX_RESULT_BYTES + 1)), "too_large"),
        ('{"type": "result", "request_id": "r", "status": "200"}', "bad_format"),
        ('{"type": "result", "request_id": "r", "status": 200, "body": 5}', "bad_format"),
        ('{"type": "result", "request_id": "r", "status": 200, "body": "\\ud800"}', "bad_format"),
    ]
    for text, outcome in cases:
        with pytest.raises(FrameError) as caught:
            frames.parse_reply(text)
        assert caught.value.request_id == "r" and caught.value.error.outcome == Outcome(outcome)
    # An error page may be long: it is an answer, not too_large (its retries go on).
    long_error = frames.result(request_id="r", status=503, body="x" * (MAX_RESULT_BYTES + 1))
    assert frames.parse_reply(long_error).status == 503
    for text in ("not json", "[1]", '{"type": "result", "status": 200}'):
        with pytest.raises(FrameError) as caught:
            frames.parse_reply(text)
        assert caught.value.request_id is None  # names no request: the connection ends


@pytest.mark.parametrize(
    ("hello", "problem"),
    [
        ("hi", "not JSON"),
        ('{"type": "welcome"}', "first message must be"),
        ('{"type": "hello", "protocol": "recoghub-ws/2"}', "recoghub-ws/1"),
        ('{"type": "hello", "protocol": "recoghub-ws/1", "service_guid": 5}', "service_guid"),
        (
            '{"type": "hello", "protocol": "recoghub-ws/1", "service_guid": "g", '
            '"max_concurrency": 0}',
            "max_concurrency",
        ),
    ],
)
def test_a_bad_hello_says_what_is_wrong(hello: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        frames.parse_hello(hello)


def test_the_recognizer_finds_the_connect_route_and_backs_off() -> None:
    assert connect_url("http://hub:8000") == "ws://hub:8000/api/v1/connect"
    assert connect_url("https://hub.example.org/prefix/") == (
        "wss://hub.example.org/prefix/api/v1/connect"
    )
    assert connect_url("http://hub:8000/api/v1/connect") == "ws://hub:8000/api/v1/connect"
    with pytest.raises(ValueError, match="http"):
        connect_url("hub:8000")
    assert 0.5 <= backoff(0) <= 1.0
    assert 1.0 <= backoff(1) <= 2.0
    assert all(15.0 <= backoff(n) <= 30.0 for n in range(5, 40))

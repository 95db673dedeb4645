"""Request signing of SPEC §2: HMAC-SHA256 over timestamp, request id and body hash."""

import hashlib
import hmac
import time

from gateway.protocol.signing import body_digest, sign, verify

SECRET = "s3cret-of-the-service"
NOW = 1_700_000_000.0
BODY = b"\x89PNG fake image bytes"


def signed(secret: str = SECRET, *, timestamp: str = str(int(NOW)), body: bytes = BODY) -> str:
    return sign(secret, timestamp=timestamp, request_id="req-1", digest=body_digest(body))


def check(signature: str, *, timestamp: str = str(int(NOW)), body: bytes = BODY) -> str | None:
    return verify(
        SECRET, timestamp=timestamp, request_id="req-1", body=body, signature=signature, now=NOW
    )


def test_signature_is_v1_hex_hmac_of_the_documented_message() -> None:
    message = f"{int(NOW)}.req-1.{hashlib.sha256(BODY).hexdigest()}".encode()
    expected = hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    assert signed() == f"v1={expected}"


def test_sign_then_verify_round_trips() -> None:
    assert check(signed()) is None


def test_a_wrong_secret_is_refused() -> None:
    assert check(signed("another-secret")) == "signature does not match"


def test_a_changed_body_is_refused() -> None:
    assert check(signed(), body=BODY + b"!") == "signature does not match"


def test_another_request_id_is_refused() -> None:
    signature = sign(SECRET, timestamp=str(int(NOW)), request_id="req-2", digest=body_digest(BODY))
    assert check(signature) == "signature does not match"


def test_a_changed_timestamp_is_refused() -> None:
    assert check(signed(), timestamp=str(int(NOW) + 1)) == "signature does not match"


def test_a_stale_timestamp_is_refused_even_when_signed_correctly() -> None:
    old = str(int(NOW) - 3600)
    reason = check(signed(timestamp=old), timestamp=old)
    assert reason is not None
    assert "3600s" in reason


def test_a_timestamp_from_the_future_is_refused() -> None:
    ahead = str(int(NOW) + 3600)
    assert check(signed(timestamp=ahead), timestamp=ahead) is not None


def test_a_small_clock_skew_is_tolerated() -> None:
    near = str(int(NOW) - 60)
    assert check(signed(timestamp=near), timestamp=near) is None


def test_a_timestamp_that_is_not_a_number_is_refused() -> None:
    assert check(signed(timestamp="yesterday"), timestamp="yesterday") == (
        "timestamp is not a number"
    )


def test_a_malformed_signature_is_refused() -> None:
    assert check("v1=zz") == "signature does not match"
    assert check("") == "signature does not match"


def test_the_default_skew_window_is_five_minutes_either_way() -> None:
    for offset in (-300, 300):
        edge = str(int(NOW) + offset)
        assert check(signed(timestamp=edge), timestamp=edge) is None
    for offset in (-300.5, 300.5):
        past = str(NOW + offset)
        assert check(signed(timestamp=past), timestamp=past) is not None


def test_a_timestamp_that_is_not_finite_is_refused() -> None:
    for word in ("nan", "inf", "-inf"):
        assert check(signed(timestamp=word), timestamp=word) == "timestamp is not a finite number"


def test_verify_checks_against_the_clock_by_default() -> None:
    timestamp = str(int(time.time()))
    signature = signed(timestamp=timestamp)
    assert (
        verify(SECRET, timestamp=timestamp, request_id="req-1", body=BODY, signature=signature)
        is None
    )
    stale = str(int(time.time()) - 3600)
    reason = verify(
        SECRET, timestamp=stale, request_id="req-1", body=BODY, signature=signed(timestamp=stale)
    )
    assert reason is not None and "away from now" in reason

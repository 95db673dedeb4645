"""The sample recognizer over HTTP: ping, answers, signatures and its misbehaviour knobs."""

import asyncio
import logging
import time
from collections.abc import Callable

import httpx
import pytest

from gateway.protocol.result_string import ResultStringError, Tag, parse_result
from gateway.protocol.signing import HEADER_REQUEST_ID, HEADER_SIGNATURE
from sample_recognizer.app import ConfigError, RecognizerConfig, create_recognizer_app
from tests.builders import jpeg_bytes, png_bytes
from tests.recognizer import team_models
from tests.recognizer.serving import recognizer, signed_headers
from tests.servers import live_server

SECRET = "the-service-signing-secret"


def test_ping_answers_with_the_backend_name() -> None:
    with recognizer(backend="demo") as client:
        r = client.get("/ping")
    assert r.status_code == 200
    assert r.json()["backend"] == "demo"


def test_dummy_answers_the_default_result_string_as_text() -> None:
    with recognizer() as client:
        r = client.post("/recognize", content=png_bytes())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert parse_result(r.content) == [Tag("cat", 0.9), Tag("dog", 0.1)]


def test_dummy_answers_the_configured_string_to_any_image() -> None:
    with recognizer(answer="husky:0.7;wolf:0.2") as client:
        answers = {
            client.post("/recognize", content=img).text for img in (png_bytes(), jpeg_bytes())
        }
    assert answers == {"husky:0.7;wolf:0.2"}


def test_a_dummy_answer_that_breaks_the_grammar_is_refused_at_creation() -> None:
    with pytest.raises(ConfigError, match='entry 1 "dog" has no ":score"'):
        create_recognizer_app(RecognizerConfig(answer="dog"))


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_concurrency", 0), ("bad_rate", 1.5), ("error_status_rate", -0.1), ("delay_ms", -1)],
)
def test_settings_out_of_range_are_refused(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        RecognizerConfig(**{field: value})  # type: ignore[arg-type]


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown backend 'magic'"):
        create_recognizer_app(RecognizerConfig(backend="magic"))


# --- signatures ------------------------------------------------------------------------


def test_with_a_secret_a_correctly_signed_request_is_answered() -> None:
    body = png_bytes()
    with recognizer(secret=SECRET) as client:
        r = client.post("/recognize", content=body, headers=signed_headers(SECRET, body))
    assert r.status_code == 200
    assert r.text == "cat:0.9;dog:0.1"


def test_with_a_secret_an_unsigned_request_gets_401_naming_the_missing_header() -> None:
    with recognizer(secret=SECRET) as client:
        r = client.post("/recognize", content=png_bytes())
    assert r.status_code == 401
    assert HEADER_SIGNATURE in r.text


def test_with_a_secret_ping_needs_no_signature() -> None:
    with recognizer(secret=SECRET) as client:
        assert client.get("/ping").status_code == 200


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("wrong secret", "signature does not match"),
        ("changed body", "signature does not match"),
        ("stale timestamp", "away from now"),
        ("garbage signature", "signature does not match"),
    ],
)
def test_with_a_secret_a_bad_signature_gets_401_with_the_reason(tamper: str, reason: str) -> None:
    body = png_bytes()
    headers = signed_headers(SECRET, body)
    if tamper == "wrong secret":
        headers = signed_headers("another-secret", body)
    elif tamper == "stale timestamp":
        headers = signed_headers(SECRET, body, timestamp=time.time() - 3600)
    elif tamper == "garbage signature":
        headers[HEADER_SIGNATURE] = "v1=0123"
    sent = body + b"tampered" if tamper == "changed body" else body
    with recognizer(secret=SECRET) as client:
        r = client.post("/recognize", content=sent, headers=headers)
    assert r.status_code == 401
    assert reason in r.text


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sample_recognizer"]


def test_a_bad_signature_is_logged_as_such_with_the_request_id_and_the_fix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = png_bytes()
    headers = signed_headers("another-secret", body)
    caplog.set_level(logging.WARNING, logger="sample_recognizer")
    with recognizer(secret=SECRET) as client:
        r = client.post("/recognize", content=body, headers=headers)
    assert r.status_code == 401
    [line] = refusals(caplog)
    assert line.startswith(f"request {headers[HEADER_REQUEST_ID]}: answered 401 to POST /recognize")
    assert "bad signature: signature does not match" in line
    assert "start this recognizer with it (--secret / RECOGHUB_RECOGNIZER_SECRET)" in line


@pytest.mark.parametrize(
    ("config", "request_headers", "status", "logged"),
    [
        ({"secret": SECRET}, {}, 401, "unsigned request: missing X-Recog-Signature"),
        ({"secret": SECRET}, "stale", 401, "set this machine's clock right"),
        ({"error_status_rate": 1.0}, {}, 500, "start it without --error-rate"),
        (
            {"backend": "python", "function": "tests.recognizer.team_models:crashes"},
            {},
            500,
            "CUDA out of memory — fix tests.recognizer.team_models:crashes",
        ),
        (
            {"backend": "python", "function": "tests.recognizer.team_models:no_score"},
            {},
            500,
            'has no ":score" — answer "tag:score" entries',
        ),
    ],
)
def test_every_refusal_is_one_logged_line_saying_what_to_do(
    caplog: pytest.LogCaptureFixture,
    config: dict[str, object],
    request_headers: dict[str, str] | str,
    status: int,
    logged: str,
) -> None:
    body = png_bytes()
    headers = request_headers
    if headers == "stale":
        headers = signed_headers(SECRET, body, timestamp=time.time() - 3600)
    caplog.set_level(logging.WARNING, logger="sample_recognizer")
    with recognizer(**config) as client:
        r = client.post("/recognize", content=body, headers=headers)
    assert r.status_code == status
    [line] = refusals(caplog)
    assert f"answered {status} to POST /recognize" in line and logged in line
    assert "\n" not in line


def test_a_path_it_does_not_serve_is_logged_with_the_fix(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sample_recognizer")
    with recognizer() as client:
        assert client.post("/api/recognize", content=b"x").status_code == 404
        assert client.get("/recognize").status_code == 405
    lines = refusals(caplog)
    assert [line.split(": ")[0] for line in lines] == ["request -"] * 2
    assert "answered 404 to POST /api/recognize" in lines[0]
    assert "answered 405 to GET /recognize" in lines[1]
    assert all("register the recognizer's base URL" in line for line in lines)


def test_a_good_answer_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sample_recognizer")
    with recognizer() as client:
        assert client.post("/recognize", content=png_bytes()).status_code == 200
    assert refusals(caplog) == []


def test_without_a_secret_signature_headers_are_ignored() -> None:
    body = png_bytes()
    with recognizer() as client:
        r = client.post("/recognize", content=body, headers=signed_headers("whatever", b"x"))
    assert r.status_code == 200


# --- misbehaviour on purpose -----------------------------------------------------------


def test_bad_rate_1_gives_answers_the_hub_rejects() -> None:
    with recognizer(backend="demo", bad_rate=1.0) as client:
        responses = [client.post("/recognize", content=png_bytes()) for _ in range(12)]
    assert {r.status_code for r in responses} == {200}
    for r in responses:
        with pytest.raises(ResultStringError):
            parse_result(r.content)


def test_bad_rate_one_half_mixes_good_and_bad_answers() -> None:
    with recognizer(bad_rate=0.5, seed=7) as client:
        bodies = [client.post("/recognize", content=png_bytes()).content for _ in range(40)]
    good = [b for b in bodies if b == b"cat:0.9;dog:0.1"]
    assert 0 < len(good) < len(bodies)
    for body in bodies:
        if body not in good:
            with pytest.raises(ResultStringError):
                parse_result(body)


def test_error_rate_1_answers_500() -> None:
    with recognizer(error_status_rate=1.0) as client:
        statuses = {client.post("/recognize", content=png_bytes()).status_code for _ in range(5)}
        ping = client.get("/ping").status_code
    assert statuses == {500}
    assert ping == 200


def test_a_slow_recognizer_still_answers_correctly() -> None:
    with recognizer(delay_ms=150) as client:
        r = client.post("/recognize", content=png_bytes())
    assert r.status_code == 200
    assert r.text == "cat:0.9;dog:0.1"


def test_a_slow_recognizer_makes_an_impatient_client_time_out() -> None:
    # The delay is far above the client's timeout, so this cannot pass by luck.
    with recognizer(delay_ms=1000) as client, pytest.raises(httpx.ReadTimeout):
        client.post("/recognize", content=png_bytes(), timeout=0.1)


async def test_requests_beyond_the_concurrency_limit_wait_their_turn() -> None:
    gate = team_models.gate
    gate.reset()
    config = RecognizerConfig(
        backend="python", function="tests.recognizer.team_models:gated", max_concurrency=2
    )
    with live_server(create_recognizer_app(config)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            requests = asyncio.gather(
                *(client.post("/recognize", content=png_bytes()) for _ in range(8))
            )
            sent = asyncio.ensure_future(requests)
            try:
                # The limit is reached; then the calls go through one at a time, each
                # freeing its place for one that waited.
                await wait_for(lambda: gate.active >= 2, "two calls at the model")
                for released in range(1, 9):
                    gate.release()
                    await wait_for(lambda n=released: gate.done >= n, "a call to finish")  # type: ignore[misc]
                responses = await sent
            finally:
                gate.release(8)
    assert [r.text for r in responses] == ["busy:1"] * 8
    assert gate.peak == 2


async def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.005)

"""The dispatcher against real recognizers on 127.0.0.1, over each of the hub's HTTP clients."""

import asyncio
import re
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import get_args

import pytest

from gateway.config import Settings
from gateway.dispatch.answers import Target
from gateway.dispatch.client import make_client_session
from gateway.dispatch.dispatcher import Dispatcher
from gateway.dispatch.policy import REFUSED_DETAIL
from gateway.errors import Outcome
from gateway.protocol import signing
from gateway.protocol.result_string import Tag
from tests.builders import LOOPBACK_ALLOWED, jpeg_bytes, png_bytes
from tests.dispatch.recognizers import BAD_ANSWER, OK_ANSWER, FakeRecognizers
from tests.servers import live_server

SECRET = "the-service-signing-secret"
SETTINGS = Settings(
    database_url="sqlite://",
    request_timeout_s=2.0,
    max_attempts=3,
    retry_backoff_s=0.001,
    retry_backoff_max_s=0.01,
    endpoint_allow=LOOPBACK_ALLOWED,
)
IMAGE = png_bytes()


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeRecognizers, str]]:
    recognizers = FakeRecognizers()
    with live_server(recognizers.app) as server:
        yield recognizers, server.url


@pytest.fixture(params=get_args(Settings.model_fields["http_client"].annotation))
async def dispatcher(request: pytest.FixtureRequest) -> AsyncIterator[Dispatcher]:
    """A dispatcher on each HTTP client the hub can use (RECOGHUB_HTTP_CLIENT)."""
    settings = SETTINGS.model_copy(update={"http_client": request.param})
    http = make_client_session(settings)
    try:
        yield Dispatcher(http, settings)
    finally:
        await http.close()


def target(*instances: str) -> Target:
    return Target(str(uuid.uuid4()), str(uuid.uuid4()), instances, SECRET)


async def test_ok_answer_is_parsed_and_ranked(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str]
) -> None:
    _, url = fakes
    answer = await dispatcher.recognize(target(f"{url}/ok"), IMAGE, content_type="image/png")

    assert answer.ok
    assert answer.outcome is Outcome.OK
    # Best first; the tie keeps the team's order; the repeated "cat" keeps its best entry.
    assert answer.tags == [Tag("dog", 0.9), Tag("cat", 0.2), Tag("bird", 0.2)]
    assert answer.raw == OK_ANSWER
    assert answer.status == 200
    assert [(a.number, a.instance, a.outcome) for a in answer.attempts] == [
        (1, f"{url}/ok", Outcome.OK)
    ]
    assert answer.latency_ms == answer.attempts[0].latency_ms


async def test_signed_headers_arrive_and_verify(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str]
) -> None:
    recognizers, url = fakes
    service = target(f"{url}/ok")
    image = jpeg_bytes()
    answer = await dispatcher.recognize(service, image, content_type="image/jpeg")

    [seen] = recognizers.requests_for(service.service_guid)
    headers = seen.headers
    assert seen.body == image
    assert headers["content-type"] == "image/jpeg"
    assert headers["x-recog-request-id"] == answer.request_id
    assert headers["x-recog-service-guid"] == service.service_guid
    assert headers["x-recog-provider-guid"] == service.provider_guid
    assert abs(int(headers["x-recog-timestamp"]) - time.time()) < 300
    assert headers["x-recog-signature"].startswith("v1=")

    def verify(secret: str) -> str | None:
        return signing.verify(
            secret,
            timestamp=headers["x-recog-timestamp"],
            request_id=headers["x-recog-request-id"],
            body=seen.body,
            signature=headers["x-recog-signature"],
        )

    assert verify(SECRET) is None
    assert verify("another-secret") == "signature does not match"


async def test_request_id_is_random_and_kept_across_retries(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str]
) -> None:
    recognizers, url = fakes
    service = target(f"{url}/status/500")
    first = await dispatcher.recognize(service, IMAGE, content_type="image/png")
    second = await dispatcher.recognize(service, IMAGE, content_type="image/png")

    ids = [s.headers["x-recog-request-id"] for s in recognizers.requests_for(service.service_guid)]
    # Three attempts each, one id per request: the same image twice gets two ids.
    assert ids == [first.request_id] * 3 + [second.request_id] * 3
    assert first.request_id != second.request_id
    assert re.fullmatch(r"[0-9a-f]{32}", first.request_id)
    assert service.service_guid.replace("-", "") not in first.request_id


async def test_timeout_is_retried_up_to_max_attempts(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str]
) -> None:
    _, url = fakes
    answer = await dispatcher.recognize(
        target(f"{url}/sleep/1"), IMAGE, content_type="image/png", timeout_s=0.2
    )

    assert answer.outcome is Outcome.TIMEOUT
    assert [a.outcome for a in answer.attempts] == [Outcome.TIMEOUT] * 3
    assert answer.detail is not None and "within 0.2s" in answer.detail
    assert answer.tags == []


async def test_an_answer_trickling_past_the_timeout_is_a_timeout(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str]
) -> None:
    """The timeout bounds the whole exchange: headers at once, then a byte every 0.1 s."""
    _, url = fakes
    answer = await dispatcher.recognize(
        target(f"{url}/trickle"), IMAGE, content_type="image/png", timeout_s=0.5, max_attempts=1
    )

    assert answer.outcome is Outcome.TIMEOUT
    assert answer.detail is not None and "within 0.5s" in answer.detail


@pytest.mark.parametrize("max_attempts", [1, 2, 4])
async def test_max_attempts_can_be_set_per_request(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str], max_attempts: int
) -> None:
    _, url = fakes
    answer = await dispatcher.recognize(
        target(f"{url}/status/500"), IMAGE, content_type="image/png", max_attempts=max_attempts
    )

    assert answer.outcome is Outcome.HTTP_ERROR
    assert [a.number for a in answer.attempts] == list(range(1, max_attempts + 1))


async def test_connection_refused_is_retried(
    dispatcher: Dispatcher, refused_url: Callable[[], str]
) -> None:
    down = refused_url()
    answer = await dispatcher.recognize(target(down), IMAGE, content_type="image/png")

    assert answer.outcome is Outcome.CONNECT_ERROR
    assert [(a.number, a.instance, a.outcome) for a in answer.attempts] == [
        (1, down, Outcome.CONNECT_ERROR),
        (2, down, Outcome.CONNECT_ERROR),
        (3, down, Outcome.CONNECT_ERROR),
    ]
    assert answer.detail is not None and f"cannot reach {down}" in answer.detail


async def test_no_retry_is_sent_once_the_caller_gives_up(
    dispatcher: Dispatcher, refused_url: Callable[[], str]
) -> None:
    # A run whose breaker paused the service asks for no more attempts of what was in
    # flight: the first failure is the outcome.
    asked: list[int] = []

    def given_up() -> bool:
        asked.append(1)
        return len(asked) >= 2

    down = refused_url()
    answer = await dispatcher.recognize(
        target(down), IMAGE, content_type="image/png", max_attempts=5, given_up=given_up
    )

    assert answer.outcome is Outcome.CONNECT_ERROR
    assert [a.number for a in answer.attempts] == [1, 2]
    assert answer.detail is not None and f"cannot reach {down}" in answer.detail


async def test_failover_to_a_working_instance(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str], refused_url: Callable[[], str]
) -> None:
    _, url = fakes
    down, good = refused_url(), f"{url}/ok"
    answer = await dispatcher.recognize(target(down, good), IMAGE, content_type="image/png")

    assert answer.ok
    assert answer.tags[0] == Tag("dog", 0.9)
    assert [(a.number, a.instance, a.outcome) for a in answer.attempts] == [
        (1, down, Outcome.CONNECT_ERROR),
        (2, good, Outcome.OK),
    ]
    assert all(a.latency_ms is not None and a.latency_ms >= 0 for a in answer.attempts)
    assert answer.latency_ms == answer.attempts[-1].latency_ms


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_and_429_are_retried(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str], status: int
) -> None:
    _, url = fakes
    answer = await dispatcher.recognize(
        target(f"{url}/status/{status}"), IMAGE, content_type="image/png"
    )

    assert answer.outcome is Outcome.HTTP_ERROR
    assert answer.status == status
    assert [(a.outcome, a.status) for a in answer.attempts] == [(Outcome.HTTP_ERROR, status)] * 3
    assert answer.detail is not None and f"HTTP {status}" in answer.detail
    assert answer.raw == "nope"


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_client_errors_are_not_retried(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str], status: int
) -> None:
    _, url = fakes
    answer = await dispatcher.recognize(
        target(f"{url}/status/{status}"), IMAGE, content_type="image/png"
    )

    assert answer.outcome is Outcome.HTTP_ERROR
    assert answer.status == status
    assert len(answer.attempts) == 1
    assert answer.attempts[0].status == status


async def test_big_error_page_is_an_http_error_not_too_large(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str]
) -> None:
    _, url = fakes
    answer = await dispatcher.recognize(target(f"{url}/big-error"), IMAGE, content_type="image/png")

    assert answer.outcome is Outcome.HTTP_ERROR
    assert answer.status == 503
    assert len(answer.attempts) == 3
    # The team sees the start of its own error page, never more than a short preview.
    assert answer.raw is not None and answer.raw.startswith("eee") and len(answer.raw) <= 200


async def test_bad_format_is_not_retried_and_keeps_the_entry_and_raw(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str]
) -> None:
    _, url = fakes
    answer = await dispatcher.recognize(target(f"{url}/bad"), IMAGE, content_type="image/png")

    assert answer.outcome is Outcome.BAD_FORMAT
    assert answer.detail == 'entry 2 "dog" has no ":score"'
    assert answer.raw == BAD_ANSWER
    assert answer.status == 200
    assert len(answer.attempts) == 1
    assert answer.tags == []


async def test_a_valid_answer_sent_in_chunks_is_read_whole(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str]
) -> None:
    _, url = fakes
    answer = await dispatcher.recognize(target(f"{url}/chunked"), IMAGE, content_type="image/png")

    assert answer.outcome is Outcome.OK, answer.detail
    assert answer.raw == OK_ANSWER
    assert [tag.tag for tag in answer.tags] == ["dog", "cat", "bird"]


@pytest.mark.parametrize("kind", ["big", "big-chunked"], ids=["content-length", "chunked"])
async def test_answer_over_64_kib_is_too_large(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str], kind: str
) -> None:
    _, url = fakes
    answer = await dispatcher.recognize(target(f"{url}/{kind}"), IMAGE, content_type="image/png")

    assert answer.outcome is Outcome.TOO_LARGE
    assert answer.detail is not None and "65536-byte limit" in answer.detail
    assert len(answer.attempts) == 1


async def test_latency_covers_the_recognizers_work(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str]
) -> None:
    _, url = fakes
    answer = await dispatcher.recognize(
        target(f"{url}/sleep/0.05"), IMAGE, content_type="image/png"
    )

    assert answer.ok
    assert answer.latency_ms is not None and answer.latency_ms >= 50.0
    assert answer.attempts[0].latency_ms == answer.latency_ms


async def test_instances_are_balanced_round_robin(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str]
) -> None:
    recognizers, url = fakes
    service = target(f"{url}/rr-a", f"{url}/rr-b", f"{url}/rr-c")
    for _ in range(6):
        assert (await dispatcher.recognize(service, IMAGE, content_type="image/png")).ok

    order = [s.prefix for s in recognizers.requests_for(service.service_guid)]
    assert order == ["rr-a", "rr-b", "rr-c"] * 2
    assert Counter(order) == {"rr-a": 2, "rr-b": 2, "rr-c": 2}


async def test_a_service_without_instances_is_a_connect_error(dispatcher: Dispatcher) -> None:
    answer = await dispatcher.recognize(target(), IMAGE, content_type="image/png")

    assert answer.outcome is Outcome.CONNECT_ERROR
    assert answer.request_id
    assert answer.detail == (
        "the service has no endpoint instances and no recognizer connected out"
    )


async def test_ping(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str], refused_url: Callable[[], str]
) -> None:
    _, url = fakes
    up = await dispatcher.ping(f"{url}/ok")
    down = await dispatcher.ping(refused_url())

    assert up.reachable and up.status == 200 and up.latency_ms is not None
    assert not down.reachable and down.detail is not None and "cannot reach" in down.detail


async def test_a_ping_answered_with_another_status_is_not_reachable(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str]
) -> None:
    _, url = fakes
    result = await dispatcher.ping(f"{url}/status/503")

    assert not result.reachable and result.status == 503
    assert result.detail == "/ping answered HTTP 503"


async def test_a_ping_without_an_answer_in_time_is_not_reachable(
    dispatcher: Dispatcher, fakes: tuple[FakeRecognizers, str]
) -> None:
    _, url = fakes
    # The answer comes after 3 s, thirty times the client's patience.
    result = await dispatcher.ping(f"{url}/sleep/3", timeout_s=0.1)

    assert not result.reachable and result.status is None
    assert result.detail == "no answer within 0.1s"


@pytest.mark.parametrize("http_client", get_args(Settings.model_fields["http_client"].annotation))
async def test_a_name_is_sent_to_only_when_its_address_is_allowed(
    fakes: tuple[FakeRecognizers, str], http_client: str
) -> None:
    """`localhost` resolves to 127.0.0.1: sent to while loopback is allowed, refused at
    connection time (and never reached) once nothing is."""
    recognizers, url = fakes
    by_name = url.replace("127.0.0.1", "localhost") + "/ok"
    for allow, outcome in ((LOOPBACK_ALLOWED, Outcome.OK), ("", Outcome.CONNECT_ERROR)):
        settings = SETTINGS.model_copy(update={"http_client": http_client, "endpoint_allow": allow})
        http = make_client_session(settings)
        try:
            service = target(by_name)
            answer = await Dispatcher(http, settings).recognize(
                service, IMAGE, content_type="image/png", max_attempts=1
            )
        finally:
            await http.close()

        assert answer.outcome is outcome, answer.detail
        assert len(recognizers.requests_for(service.service_guid)) == (outcome is Outcome.OK)
        if outcome is Outcome.CONNECT_ERROR:
            assert answer.detail == f"cannot reach {by_name}: {REFUSED_DETAIL}"


@pytest.mark.parametrize("http_client", get_args(Settings.model_fields["http_client"].annotation))
async def test_a_name_with_several_addresses_reaches_the_one_that_answers(
    fakes: tuple[FakeRecognizers, str], http_client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name's first address refuses connections (nothing listens on 127.0.0.2); the
    request reaches the second, at the latest on its retry."""
    _, url = fakes
    port = int(url.rsplit(":", 1)[1])
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
        for address in ("127.0.0.2", "127.0.0.1")
    ]

    async def resolve(host: str, *args: object, **kwargs: object) -> list[object]:
        assert host == "recognizer.test"
        return answers

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolve)
    settings = SETTINGS.model_copy(update={"http_client": http_client})
    http = make_client_session(settings)
    try:
        answer = await Dispatcher(http, settings).recognize(
            target(f"http://recognizer.test:{port}/ok"),
            IMAGE,
            content_type="image/png",
            max_attempts=2,
        )
    finally:
        await http.close()

    assert answer.outcome is Outcome.OK, answer.detail

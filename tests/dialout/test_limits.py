"""A connection's budget of incoming messages (gateway.dialout.limits.Reader), and which
results count as strays (gateway.dialout.connections)."""

import asyncio

import pytest

from gateway.dialout.connections import Connection
from gateway.dialout.frames import Reply
from gateway.dialout.limits import Reader


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_past_its_rate_a_connection_waits_before_it_is_read_again() -> None:
    clock = Clock()
    reader = Reader(rate=10, strays_allowed=0, clock=clock)
    assert [reader.wait_s(100) for _ in range(10)] == [0.0] * 10  # a second's worth at once
    assert reader.wait_s(100) == pytest.approx(0.1)
    clock.now += 1.1  # paid back, and full again
    assert reader.wait_s(100) == 0.0


def test_a_big_message_costs_one_token_per_16_kib() -> None:
    reader = Reader(rate=10, strays_allowed=0, clock=Clock())
    assert reader.wait_s(390_000) == pytest.approx((1 + 390_000 // 16384 - 10) / 10)


def test_no_rate_means_no_wait() -> None:
    reader = Reader(rate=0, strays_allowed=0, clock=Clock())
    assert all(reader.wait_s(1_000_000) == 0.0 for _ in range(1000))


def test_strays_past_the_allowed_number_give_the_close_reason() -> None:
    reader = Reader(rate=0, strays_allowed=2)
    assert reader.stray() is None and reader.stray() is None
    reason = reader.stray()
    assert reason is not None and reason.startswith("3 results") and "STRAY" in reason


async def test_a_late_answer_to_a_timed_out_request_is_no_stray_once() -> None:
    sent: list[bytes | str] = []

    async def send(message: bytes | str) -> None:
        sent.append(message)

    connection = Connection(instance_id="t/1", service_guid="s", granted=2, send=send)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await connection.request("r1", "ping")
    late = Reply("r1", 200, b"cat:1")
    assert connection.answer(late) is True  # late, dropped, not counted
    assert connection.answer(late) is False  # answered twice: a stray
    assert connection.answer(Reply("never", 200, b"cat:1")) is False

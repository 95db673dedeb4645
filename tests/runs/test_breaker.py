"""The breaker's own logic, alone: the failure streak, the probe schedule and the probe
loop (a unit test of one module; the engine tests run it against real servers)."""

import pytest

from gateway.runs.engine.breaker import FailureStreak, ProbeSchedule, probe


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_streak_trips_at_its_limit_of_silent_outcomes_in_a_row() -> None:
    streak: FailureStreak[int] = FailureStreak(3)
    assert streak.add("ok", None, 1) == [1]
    assert streak.add("connect_error", "refused", 2) == []
    assert streak.add("timeout", "no answer", 3) == []
    assert not streak.tripped
    assert streak.add("connect_error", "cannot reach x: refused", 4) == []
    assert streak.tripped and streak.reached
    assert streak.take() == [2, 3, 4] and streak.held == []
    assert "3 requests in a row" in streak.reason()
    assert "connect_error: cannot reach x: refused" in streak.reason()


@pytest.mark.parametrize("answered", ["ok", "http_error", "bad_format", "too_large"])
def test_any_answer_breaks_the_streak_and_makes_the_held_failures_final(answered: str) -> None:
    streak: FailureStreak[int] = FailureStreak(3)
    streak.add("timeout", None, 1)
    streak.add("connect_error", None, 2)
    assert streak.add(answered, None, 3) == [1, 2, 3]
    streak.add("timeout", None, 4)
    streak.add("timeout", None, 5)
    assert not streak.tripped and streak.held == [4, 5]


def test_a_streak_that_never_reached_the_service_says_so() -> None:
    streak: FailureStreak[int] = FailureStreak(2)
    streak.add("connect_error", None, 1)
    streak.add("connect_error", None, 2)
    assert streak.tripped and not streak.reached


def test_a_limit_of_zero_never_holds_or_trips() -> None:
    streak: FailureStreak[int] = FailureStreak(0)
    assert [streak.add("connect_error", None, i) for i in range(50)] == [[i] for i in range(50)]
    assert not streak.tripped


def test_probes_double_up_to_the_cap_and_the_last_falls_on_the_give_up_time() -> None:
    clock = Clock()
    schedule = ProbeSchedule(first_s=1.0, max_s=60.0, give_up_s=600.0, clock=clock)
    delays = []
    while (delay := schedule.next_delay()) is not None:
        delays.append(delay)
        clock.now += delay
    assert delays[:8] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert sum(delays) == pytest.approx(600.0)
    assert all(d <= 60 for d in delays)


def test_a_schedule_counts_the_give_up_time_from_its_creation() -> None:
    clock = Clock()
    schedule = ProbeSchedule(first_s=1.0, max_s=60.0, give_up_s=10.0, clock=clock)
    clock.now += 9.5
    assert schedule.next_delay() == pytest.approx(0.5)
    clock.now += 0.5
    assert schedule.next_delay() is None


async def test_probe_stops_at_the_first_answer() -> None:
    answers = iter(["refused", "refused", None, "never asked"])
    calls = []

    async def ping() -> str | None:
        calls.append(1)
        return next(answers)

    schedule = ProbeSchedule(first_s=0.001, max_s=0.002, give_up_s=30.0)
    assert await probe(ping, schedule) is None
    assert len(calls) == 3


async def test_probe_gives_up_with_the_last_error() -> None:
    errors = iter(f"refused {n}" for n in range(10_000))
    now = 0.0  # the schedule's clock, moved by each ping (no test waits on a real timer)

    async def ping() -> str | None:
        nonlocal now
        now += 0.02
        return next(errors)

    schedule = ProbeSchedule(first_s=0.001, max_s=0.005, give_up_s=0.05, clock=lambda: now)
    error = await probe(ping, schedule)
    assert error == "refused 2"  # pinged at 0, 0.02 and 0.04 of down time, then gave up

"""The hub's own timing uncertainty (SPEC §8): how late the worker's event loop ran while
sending, recorded on the run, shown by the API, and followed by the in-flight limit."""

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.runs.engine.timing import InFlightLimit, LagWindow, LoopLag
from gateway.runs.models import Run
from tests.runs.builders import add_dataset, add_service, make_images, recognizer_app, run_state
from tests.runs.conftest import running_worker, start_run, wait_until


def window(p99_ms: float) -> LagWindow:
    return LagWindow(samples=100, p50_ms=p99_ms / 2, p99_ms=p99_ms, max_ms=p99_ms)


async def test_loop_lag_sees_the_loop_blocked_and_starts_a_new_window() -> None:
    lag = LoopLag(every_s=0.002)
    assert lag.take() is None
    sampler = asyncio.create_task(lag.run())
    try:
        await asyncio.sleep(0.02)
        time.sleep(0.06)  # the event loop is held, as by a busy worker
        await asyncio.sleep(0.01)
        seen = lag.take()
        assert seen is not None and seen.samples >= 2
        assert seen.max_ms >= 50.0
        assert seen.p50_ms <= seen.p99_ms <= seen.max_ms
        after = lag.take()
        assert after is None or after.max_ms < 50.0  # the block belongs to the last window
    finally:
        sampler.cancel()


def test_lag_percentiles_are_of_time_not_of_samples() -> None:
    """One 80 ms stall in a second of 5 ms wake-ups: answers arriving in those 80 ms
    (8% of the time) waited for the loop, so the p99 is the stall, the p50 is not."""
    lag = LoopLag(every_s=0.005)
    lag._late_ms = [0.1] * 180 + [80.0]
    seen = lag.take()
    assert seen is not None
    assert (seen.samples, seen.p50_ms, seen.p99_ms, seen.max_ms) == (181, 0.1, 80.0, 80.0)
    lag._late_ms = [0.1] * 2000 + [80.0]  # 10 s: the stall is under 1% of the time
    seen = lag.take()
    assert seen is not None and seen.p99_ms == 0.1


async def test_in_flight_limit_follows_the_lag_within_its_floor_and_maximum() -> None:
    limit = InFlightLimit(maximum=16, bound_ms=5.0, floor=4)
    seen = []
    for p99 in [9.0, 9.0, 9.0, 9.0, 9.0, 9.0]:
        await limit.adjust(window(p99))
        seen.append(limit.limit)
    assert seen == [12, 9, 6, 4, 4, 4]
    await limit.adjust(window(4.0))  # between half the bound and the bound: hold
    assert limit.limit == 4
    for _ in range(20):
        await limit.adjust(window(1.0))
    assert limit.limit == 16
    await limit.adjust(None)
    assert limit.limit == 16
    off = InFlightLimit(maximum=16, bound_ms=0.0)
    await off.adjust(window(100.0))
    assert off.limit == 16


async def test_in_flight_limit_holds_requests_beyond_it() -> None:
    limit = InFlightLimit(maximum=8, bound_ms=5.0, floor=2)
    for _ in range(2):
        await limit.adjust(window(50.0))
    assert limit.limit == 4
    release = asyncio.Event()
    peak = 0

    async def request() -> None:
        nonlocal peak
        async with limit:
            peak = max(peak, limit.in_flight)
            await release.wait()

    tasks = [asyncio.create_task(request()) for _ in range(8)]
    for _ in range(20):
        await asyncio.sleep(0)
    assert limit.in_flight == 4
    await limit.adjust(window(0.5))  # the loop is on time again: one more may go
    for _ in range(20):
        await asyncio.sleep(0)
    assert limit.in_flight == 5
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 5 and limit.in_flight == 0


async def test_a_place_freed_for_a_request_cancelled_meanwhile_goes_to_the_next() -> None:
    limit = InFlightLimit(maximum=1, bound_ms=0.0, floor=1)
    assert limit.enter_now() and not limit.enter_now()
    first, second = asyncio.create_task(limit.enter()), asyncio.create_task(limit.enter())
    await asyncio.sleep(0)
    limit.leave()  # wakes the first...
    first.cancel()  # ...which is cancelled before it takes the place
    await asyncio.wait_for(second, 1.0)
    assert first.cancelled() and limit.in_flight == 1
    limit.leave()
    assert limit.in_flight == 0


def uncertainty(engine: Engine, run_id: int) -> float | None:
    with Session(engine) as session:
        return session.scalar(select(Run.timing_uncertainty_ms).where(Run.id == run_id))


async def test_a_run_records_how_late_the_loop_ran_and_the_worker_sends_less(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    images = make_images(12)
    dataset_id = add_dataset(run_engine, data_dir, images)
    gate = threading.Event()
    app, seen = recognizer_app(lambda body: "label0:0.9", gate=gate)
    guid = add_service(run_engine, [serve(app)], max_concurrency=4)
    settings = settings.model_copy(update={"timing_bound_ms": 5.0})
    run_id = start_run(
        run_engine, settings, dataset=dataset_id, phase="dryrun", service_guids=[guid]
    )
    try:
        async with running_worker(run_engine, settings) as worker:
            await wait_until(lambda: seen.in_flight == 4, "requests held at the gate")
            time.sleep(0.08)  # the worker's event loop (this one) is held
            await wait_until(
                lambda: (uncertainty(run_engine, run_id) or 0.0) >= 60.0,
                "the run's timing uncertainty",
            )
            assert worker.timing.in_flight.limit < settings.global_concurrency
            gate.set()
            await wait_until(lambda: run_state(run_engine, run_id) == "completed", "the run")
    finally:
        gate.set()
    assert seen.requests == 12

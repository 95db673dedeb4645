"""A worker that stops (the hub's own shutdown) records no failure it caused: a request
whose retries its stop cut short is sent again later, never recorded against the team
(README, "The hub's own faults never count")."""

import asyncio
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from gateway.config import Settings
from tests.runs.builders import add_dataset, add_service, item_counts, make_images, recognizer_app
from tests.runs.conftest import running_worker, start_run, wait_until


async def test_a_failure_while_the_worker_stops_is_not_recorded(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    dataset = add_dataset(run_engine, data_dir, make_images(8))
    gate = threading.Event()
    # Every request waits at the gate, then fails with a 500, which is retried: the stop
    # gives up the retries, and the team would be recorded http_error for the hub's stop.
    app, seen = recognizer_app(lambda b: "x:1", gate=gate, status=500)
    add_service(run_engine, [serve(app)], max_concurrency=2)
    run_id = start_run(
        run_engine, settings, dataset=dataset, phase="dryrun", concurrency=2, max_attempts=3
    )
    async with running_worker(run_engine, settings) as worker:
        await wait_until(lambda: seen.in_flight == 2, "two requests at the gate")

        async def open_the_gate_once_stopping() -> None:
            while not worker.lanes.closing:
                await asyncio.sleep(0.01)
            gate.set()

        opener = asyncio.create_task(open_the_gate_once_stopping())
    # Leaving the block stops the worker as the hub's shutdown does; the gated requests
    # fail during its grace for requests in flight.
    await opener
    counts = item_counts(run_engine, run_id)
    assert counts == {"pending": 8}, counts
    assert seen.requests == 2  # the stop sent no retry

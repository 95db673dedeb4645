"""A lane's end seen by a claim (`engine.claimer`): when the claim that finds nothing left
comes after the lane's consumers sent their last items, no consumer is left to say the lane
is done, so the claimer does (the worker then writes its results and surveys at once)."""

import asyncio
from pathlib import Path
from typing import Any

from gateway.dispatch.answers import Target
from gateway.runs.engine.claimer import Claimer
from gateway.runs.engine.images import ImageCache
from gateway.runs.engine.lanes import Lane, Lanes
from gateway.runs.engine.store import LanePlan
from gateway.runs.models import Phase, ServiceStatus


class NothingLeft:
    """The claimer's database when every item is claimed: each claim comes back empty."""

    def __init__(self) -> None:
        self.claims = 0

    async def hot(self, fn: Any, **kwargs: Any) -> Any:
        self.claims += 1
        return {}, {}


async def claim_once(*, in_flight: int) -> tuple[Lane, int]:
    """One claim for a sending lane with `in_flight` requests out; returns the lane and
    how often the claimer said a lane was done sending."""
    db = NothingLeft()
    lanes = Lanes(db=db, worker_id="w", images=ImageCache())  # type: ignore[arg-type]
    plan = LanePlan(
        run_service_id=1,
        run_id=1,
        phase=Phase.DRYRUN,
        status=ServiceStatus.ONGOING,
        max_concurrency=1,
        timeout_s=5.0,
        max_attempts=1,
        target=Target("s", "p", ("http://127.0.0.1:9",), "secret"),
    )
    lane = lanes.open[1] = Lane(plan)
    consumer = asyncio.create_task(asyncio.sleep(3600))  # its one slot's consumer
    lane.consumers[0] = consumer
    for _ in range(in_flight):
        lane.sending()
    said: list[None] = []
    claimer = Claimer(
        db=db,  # type: ignore[arg-type]
        worker_id="w",
        lease_s=30.0,
        data_dir=Path("."),
        poll_s=1.0,
        lanes=lanes,
        images=ImageCache(),
        on_done_sending=lambda: said.append(None),
    )
    try:
        await claimer.claim()
    finally:
        consumer.cancel()
    assert db.claims == 1 and lane.dry
    return lane, len(said)


async def test_a_claim_finding_nothing_after_the_last_answer_says_the_lane_is_done() -> None:
    lane, said = await claim_once(in_flight=0)
    assert lane.done_sending and said == 1


async def test_a_claim_finding_nothing_while_a_request_is_out_leaves_it_to_its_consumer() -> None:
    lane, said = await claim_once(in_flight=1)
    assert not lane.done_sending and said == 0

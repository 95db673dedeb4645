"""A lane's buffer (`engine.lanes.ClaimQueue`): claims in order to its consumers, and no
claim lost when a consumer waiting for one is cancelled, before or after it was woken."""

import asyncio

from gateway.runs.engine.lanes import Claim, ClaimQueue


def claim(n: int) -> Claim:
    return Claim(item_id=n, image_id=n, claimed_at=0.0)


async def test_consumers_get_the_claims_in_order_waiting_when_there_is_none() -> None:
    queue = ClaimQueue()
    queue.put_nowait(claim(1))
    assert not queue.empty() and queue.get_nowait() == claim(1)
    assert queue.empty()
    waiting = [asyncio.create_task(queue.get()) for _ in range(2)]
    await asyncio.sleep(0)
    queue.put_nowait(claim(2))
    queue.put_nowait(None)  # a consumer is to leave
    assert await asyncio.gather(*waiting) == [claim(2), None]


async def test_a_cancelled_consumer_leaves_its_claim_to_the_next() -> None:
    queue = ClaimQueue()
    first, second = asyncio.create_task(queue.get()), asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(claim(1))  # wakes the first...
    first.cancel()  # ...which is cancelled before it takes the claim
    await asyncio.sleep(0)
    assert first.cancelled()
    assert await asyncio.wait_for(second, 1.0) == claim(1)
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    waiting.cancel()  # cancelled while waiting: nothing to pass on
    await asyncio.sleep(0)
    queue.put_nowait(claim(2))
    assert waiting.cancelled() and queue.get_nowait() == claim(2)

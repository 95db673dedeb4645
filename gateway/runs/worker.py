import asyncio

from gateway.state import HubState


async def run_embedded_worker(state: HubState, stop: asyncio.Event) -> None:
    await stop.wait()

"""The reference loops the hub is measured against: bare aiohttp, pyreqwest, wreq and httpx
(Locust, which cannot share a process with asyncio, is `locust_peer.py`).

Each sends every image once to every recognizer with `per_target` requests in flight per
recognizer (the hub's per-service concurrency), reading each image from its file as the
hub does, and parsing nothing. Returns requests per second (`aiohttp_latencies` also the
latency of every request, timed as the hub times its own: from just before the request
is written to just after the body is read).
"""

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import httpx
import pyreqwest.client
import wreq


async def _drive(
    send: "object", urls: Sequence[str], files: Sequence[Path], per_target: int
) -> float:
    async def lane(url: str, lane_no: int) -> None:
        for path in files[lane_no::per_target]:
            await send(url, path.read_bytes())  # type: ignore[operator]

    started = time.perf_counter()
    await asyncio.gather(*(lane(u, n) for u in urls for n in range(per_target)))
    return len(urls) * len(files) / (time.perf_counter() - started)


async def aiohttp_loop(urls: Sequence[str], files: Sequence[Path], per_target: int) -> float:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(url: str, body: bytes) -> None:
            async with session.post(
                url + "/recognize", data=body, headers={"Content-Type": "image/png"}
            ) as response:
                await response.read()

        return await _drive(send, urls, files, per_target)


async def httpx_loop(urls: Sequence[str], files: Sequence[Path], per_target: int) -> float:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def send(url: str, body: bytes) -> None:
            response = await client.post(
                url + "/recognize", content=body, headers={"Content-Type": "image/png"}
            )
            response.read()

        return await _drive(send, urls, files, per_target)


async def pyreqwest_loop(urls: Sequence[str], files: Sequence[Path], per_target: int) -> float:
    """pyreqwest (Rust reqwest; HTTP on its own runtime thread, outside the GIL)."""
    async with pyreqwest.client.ClientBuilder().build() as client:

        async def send(url: str, body: bytes) -> None:
            request = (
                client.post(url + "/recognize")
                .header("Content-Type", "image/png")
                .body_bytes(body)
                .build()
            )
            response = await request.send()
            await response.bytes()

        return await _drive(send, urls, files, per_target)


async def aiohttp_latencies(
    urls: Sequence[str], files: Sequence[Path], per_target: int
) -> tuple[float, list[float]]:
    """`aiohttp_loop`, also returning every request's latency in ms."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(url: str, body: bytes) -> None:
            started = time.perf_counter()
            async with session.post(
                url + "/recognize", data=body, headers={"Content-Type": "image/png"}
            ) as response:
                await response.read()
            latencies.append((time.perf_counter() - started) * 1000.0)

        rate = await _drive(send, urls, files, per_target)
    return rate, latencies


async def wreq_loop(urls: Sequence[str], files: Sequence[Path], per_target: int) -> float:
    """wreq (Rust, hyper + BoringSSL; HTTP on its own Tokio threads, outside the GIL)."""
    client = wreq.Client()
    try:

        async def send(url: str, body: bytes) -> None:
            async with client.post(
                url + "/recognize", body=body, headers={"Content-Type": "image/png"}
            ) as response:
                await response.bytes()

        return await _drive(send, urls, files, per_target)
    finally:
        client.close()

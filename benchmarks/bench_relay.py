"""SPEC §8 "Relay": `POST /api/v1/services/{guid}/recognize` through the hub vs direct.

    .venv/bin/python benchmarks/bench_relay.py [--requests 2000] [--burst 4000]
        [--http-client aiohttp|pyreqwest|wreq]

A hub (`recoghub serve --no-worker` in a subprocess, SQLite in a temp dir, so the client
shares no GIL with it) relays to one fast recognizer process. One aiohttp + uvloop client
sends the same 32x32 PNG (a) at concurrency 1: blocks of 200 requests alternating direct
and through the hub, p50/p90/p99 of each; (b) at concurrency 16: --burst requests direct,
then through the hub, twice. Targets: hub p50 - direct p50 <= 1.5 ms; hub / direct
throughput at 16 >= 0.5.
"""

import argparse
import asyncio
import resource
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import psutil
import uvloop
from hub_setup import hub_settings, tiny_png, worker_env
from processes import (
    free_port,
    load_average,
    recoghub_command,
    start_profilers,
    stop_processes,
    tail,
)
from recognizers import fast_recognizers

BLOCK = 200
WARMUP = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="each way, at concurrency 1")
    parser.add_argument("--burst", type=int, default=4000, help="each way, at concurrency 16")
    parser.add_argument(
        "--profile-dir", type=Path, help="sample the hub with py-spy, stacks written here"
    )
    parser.add_argument(
        "--http-client", help="the hub's RECOGHUB_HTTP_CLIENT (default: its default)"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="recoghub-bench-relay-"))
    settings = hub_settings(f"sqlite:///{workdir / 'hub.db'}", workdir)
    port = free_port()
    log_path = workdir / "hub.log"
    hub: subprocess.Popen[bytes] | None = None
    profilers: list[subprocess.Popen[bytes]] = []
    try:
        with fast_recognizers(1) as (recognizer,), log_path.open("wb") as log:
            hub = subprocess.Popen(
                [*recoghub_command(), "serve", "--no-worker", "--port", str(port)],
                env=worker_env(settings)
                | ({"RECOGHUB_HTTP_CLIENT": args.http_client} if args.http_client else {}),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            hub_url = f"http://127.0.0.1:{port}"
            token = settings.admin_token or ""
            try:
                guid = register(hub_url, token, recognizer, hub)
            except RuntimeError:
                print(tail(log_path))
                raise
            if args.profile_dir is not None:
                profilers.extend(start_profilers([hub], args.profile_dir))
            uvloop.run(bench(hub_url, token, guid, recognizer, args, hub.pid))
    finally:
        if hub is not None:
            stop_processes([hub])
        stop_processes(profilers, signal_first=signal.SIGINT)
        shutil.rmtree(workdir, ignore_errors=True)


def register(hub_url: str, token: str, recognizer: str, hub: subprocess.Popen[bytes]) -> str:
    """Wait for the hub, then add a provider and a service for `recognizer`; its GUID."""
    with httpx.Client(
        base_url=hub_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        deadline = time.monotonic() + 60
        while True:
            if hub.poll() is not None:
                raise RuntimeError(f"the hub exited with {hub.returncode}")
            try:
                if client.get("/api/v1/ping").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the hub did not come up")
            time.sleep(0.1)
        provider = client.post("/api/v1/providers", json={"name": "relay-team"})
        provider.raise_for_status()
        service = client.post(
            "/api/v1/services",
            json={
                "provider_guid": provider.json()["guid"],
                "name": "relay-recognizer",
                "endpoints": [recognizer],
            },
        )
        service.raise_for_status()
        return str(service.json()["guid"])


def percentile(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * p // 100) - 1)]


async def bench(
    hub_url: str, token: str, guid: str, recognizer: str, args: argparse.Namespace, hub_pid: int
) -> None:
    hub_process = psutil.Process(hub_pid)

    def hub_cpu() -> float:
        times = hub_process.cpu_times()
        return times.user + times.system

    def own_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    image = tiny_png(1, side=32)
    direct_url = f"{recognizer}/recognize"
    relay_url = f"{hub_url}/api/v1/services/{guid}/recognize"
    direct_headers = {"Content-Type": "image/png"}
    relay_headers = {"Content-Type": "image/png", "Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(url: str, headers: dict[str, str], method: str = "POST") -> float:
            started = time.perf_counter()
            body = image if method == "POST" else None
            async with session.request(method, url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status}")
            return (time.perf_counter() - started) * 1000.0

        ways = {"direct": (direct_url, direct_headers), "hub": (relay_url, relay_headers)}
        for url, headers in ways.values():
            for _ in range(WARMUP):
                await send(url, headers)

        latencies: dict[str, list[float]] = {"direct": [], "hub": []}
        for _ in range(max(1, args.requests // BLOCK)):
            for way, (url, headers) in ways.items():
                for _ in range(BLOCK):
                    latencies[way].append(await send(url, headers))
        print(
            f"concurrency 1: {len(latencies['hub'])} requests each way, alternating blocks of"
            f" {BLOCK}; {load_average()}"
        )
        for way, values in latencies.items():
            p50, p90, p99 = (percentile(values, p) for p in (50, 90, 99))
            print(
                f"  {way:6}  p50 {p50:6.3f} ms  p90 {p90:6.3f} ms  p99 {p99:6.3f} ms"
                f"  mean {statistics.fmean(values):6.3f} ms"
            )
        added = percentile(latencies["hub"], 50) - percentile(latencies["direct"], 50)
        print(f"  added by the hub at p50: {added:.3f} ms (target <= 1.5 ms)")

        async def burst(url: str, headers: dict[str, str], method: str = "POST") -> float:
            remaining = args.burst

            async def lane() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    await send(url, headers, method)

            started = time.perf_counter()
            await asyncio.gather(*(lane() for _ in range(16)))
            return args.burst / (time.perf_counter() - started)

        rates: dict[str, list[float]] = {"direct": [], "hub": []}
        # Who is the bottleneck: each process's share of a core during the bursts (the
        # client near 100% means the client, not the server, set the rate).
        busy: dict[str, dict[str, float]] = {way: {"client": 0.0, "hub": 0.0} for way in ways}
        walls: dict[str, float] = dict.fromkeys(ways, 0.0)
        hub_cpu_s = 0.0
        for _ in range(2):
            for way, (url, headers) in ways.items():
                cpu_before, own_before = hub_cpu(), own_cpu()
                rate = await burst(url, headers)
                rates[way].append(rate)
                walls[way] += args.burst / rate
                busy[way]["client"] += own_cpu() - own_before
                busy[way]["hub"] += hub_cpu() - cpu_before
                if way == "hub":
                    hub_cpu_s += hub_cpu() - cpu_before
        print(f"concurrency 16: {args.burst} requests each way, twice; {load_average()}")
        for way, values in rates.items():
            shares = ", ".join(
                f"{who} {seconds / walls[way]:.0%}" for who, seconds in busy[way].items()
            )
            print(
                f"  {way:6}  " + ", ".join(f"{r:7.0f}" for r in values) + " requests/s"
                f"  (share of a core: {shares})"
            )
        ratio = max(rates["hub"]) / max(rates["direct"])
        print(f"  hub / direct (best of each): {ratio:.2f} (target >= 0.5)")

        # Where the hub's CPU goes: the whole relay vs the framework's floor (a route
        # that does nothing, GET /api/v1/ping), at the same concurrency.
        cpu_before = hub_cpu()
        ping_rate = await burst(f"{hub_url}/api/v1/ping", {}, method="GET")
        ping_cpu_us = (hub_cpu() - cpu_before) / args.burst * 1e6
        print(
            f"  hub CPU per request: relay {hub_cpu_s / (2 * args.burst) * 1e6:.0f} µs;"
            f" GET /api/v1/ping {ping_cpu_us:.0f} µs ({ping_rate:.0f} requests/s)"
        )


if __name__ == "__main__":
    main()

"""SPEC §8 "Dial-out": a dry run to 8 recognizers connected out vs the same over HTTP.

    .venv/bin/python benchmarks/bench_dialout.py [--images 5000] [--rounds 1] [--sleep-ms 0]

In one run, with one `recoghub worker --listen 127.0.0.1:0` process on SQLite and the
same stored images: (a) a dry run to 8 fast HTTP recognizers (fast_recognizer.py), and
(b) the same dry run to 8 services without endpoints, each served by one fast dial-out
recognizer (fast_dialout.py) connected to the worker. Every result is recorded and
checked exactly once; images/s as in bench_dispatch.py (first claim .. run completed).
Target: dial-out / HTTP >= 0.80.
"""

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hub_setup import BenchHub, bench_hub, worker_env
from processes import cpu_seconds, load_average, recoghub_command, stop_processes, tail

from gateway.auth import ADMIN
from gateway.dispatch.policy import endpoint_policy
from gateway.registry.schemas import ProviderCreate, ServiceCreate
from gateway.registry.service import create_provider, create_service

RECOGNIZERS = 8
HERE = Path(__file__).resolve().parent


def register_dialout(hub: BenchHub, count: int) -> list[tuple[str, str]]:
    """`count` services with no endpoint, each of its own provider: (GUID, API key)."""
    made = []
    with hub.sessions() as session:
        for number in range(count):
            provider, key = create_provider(session, data=ProviderCreate(name=f"dial-{number}"))
            service = create_service(
                session,
                principal=ADMIN,
                data=ServiceCreate(provider_guid=provider.guid, name=f"dialout-{number}"),
                policy=endpoint_policy(hub.settings.endpoint_allow),
            )
            made.append((service.guid, key))
    return made


@contextmanager
def dialout_recognizers(
    url: str, services: list[tuple[str, str]], sleep_ms: float
) -> Iterator[list[subprocess.Popen[str]]]:
    """One fast dial-out recognizer per service, connected before this yields."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "fast_dialout.py"),
                "--hub",
                url,
                "--service",
                guid,
                "--key",
                key,
                "--sleep-ms",
                str(sleep_ms),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for guid, key in services
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != "CONNECTED":
                raise RuntimeError(f"a dial-out recognizer did not connect: {line!r}")
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


@contextmanager
def listening_worker(hub: BenchHub, workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """One `recoghub worker --listen 127.0.0.1:0`, registered; yields it and its URL."""
    log_path = workdir / "worker-0.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*recoghub_command(), "worker", "--log-level", "warning", "--listen", "127.0.0.1:0"],
            env=worker_env(hub.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60.0
        while True:
            found = re.search(r"accepting dial-out recognizers at (\S+)", log_path.read_text())
            if found and hub.live_workers() >= 1:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{tail(log_path)}")
            time.sleep(0.05)
        yield proc, found.group(1)
    finally:
        stop_processes([proc])


def one_run(
    hub: BenchHub,
    procs: list[subprocess.Popen[bytes]],
    workdir: Path,
    dataset_id: int,
    guids: list[str],
    items: int,
) -> tuple[float, float, str]:
    cpu_before = cpu_seconds(procs)
    run_id = hub.start_run(dataset_id, guids)
    try:
        hub.wait_run(run_id, workers=procs, timeout_s=max(120.0, items / 100))
    except RuntimeError:
        print(tail(workdir / "worker-0.log"))
        raise
    cpu_us = (cpu_seconds(procs) - cpu_before) / items * 1e6
    timing = hub.timing(run_id)
    line = (
        f"run {run_id}: {timing.to_completed:8.0f} images/s to completed,"
        f" {timing.to_last_result:.0f} to last result ({timing.items} work items in"
        f" {timing.seconds:.2f}s; worker CPU {cpu_us:.0f} µs each)\n"
        f"  check: {hub.check_exactly_once(run_id, expected=items)}"
    )
    return timing.to_completed, cpu_us, line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000, help="images in the dataset")
    parser.add_argument("--side", type=int, default=16, help="PNG side in pixels")
    parser.add_argument("--rounds", type=int, default=1, help="HTTP + dial-out pairs to run")
    parser.add_argument("--sleep-ms", type=float, default=0.0, help="recognizers' think time")
    args = parser.parse_args()

    with bench_hub("dialout", recognizers=RECOGNIZERS, sleep_ms=args.sleep_ms) as (
        hub,
        urls,
        workdir,
    ):
        hub.migrate()
        dataset_id = hub.import_images("dispatch", args.images, side=args.side)
        http_guids = hub.register(urls)
        dialout = register_dialout(hub, RECOGNIZERS)
        items = args.images * RECOGNIZERS
        print(
            f"setup: {args.images} {args.side}x{args.side} PNGs, {RECOGNIZERS} HTTP and"
            f" {RECOGNIZERS} dial-out recognizers (sleep {args.sleep_ms:g} ms), SQLite,"
            " 1 worker process with --listen"
        )
        with listening_worker(hub, workdir) as (worker, url):
            procs = [worker]
            with dialout_recognizers(url, dialout, args.sleep_ms):
                http_rates, dialout_rates = [], []
                for round_no in range(1, args.rounds + 1):
                    rate, _, line = one_run(hub, procs, workdir, dataset_id, http_guids, items)
                    http_rates.append(rate)
                    print(f"round {round_no} (a) HTTP     {line}")
                    guids = [guid for guid, _ in dialout]
                    rate, _, line = one_run(hub, procs, workdir, dataset_id, guids, items)
                    dialout_rates.append(rate)
                    print(f"round {round_no} (b) dial-out {line}")
                    print(f"  {load_average()}")
        print()
        print(f"HTTP endpoints  {max(http_rates):8.0f} images/s (best of {len(http_rates)})")
        print(f"dial-out        {max(dialout_rates):8.0f} images/s (best of {len(dialout_rates)})")
        ratios = [d / h for d, h in zip(dialout_rates, http_rates, strict=True)]
        print(
            "dial-out / HTTP "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + " per round (target >= 0.80)"
        )


if __name__ == "__main__":
    main()

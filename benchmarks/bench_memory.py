"""SPEC §8 "Memory": peak RSS of a run over 100,000 images vs one over 10,000.

    .venv/bin/python benchmarks/bench_memory.py [--small 10000] [--large 100000]
        [--recognizers 1] [--concurrency 8]

Both datasets (8x8 PNGs, imported with `import_records` by this process) and the
services are prepared first. Then each run is queued and dispatched by a fresh
`recoghub worker` process, stopped with SIGTERM once the run is completed (scored);
its peak RSS is its own ru_maxrss, from os.wait4. Target: large / small <= 1.2.
"""

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
from hub_setup import (
    BenchHub,
    bench_database,
    hub_settings,
    load_average,
    recoghub_command,
    tail,
    worker_env,
)
from recognizers import fast_recognizers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--recognizers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8, help="per service")
    parser.add_argument("--postgres", metavar="URL", help="run the hub on this PostgreSQL server")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="recoghub-bench-memory-"))
    try:
        with (
            fast_recognizers(args.recognizers) as urls,
            bench_database(workdir, args.postgres) as database_url,
        ):
            hub = BenchHub(hub_settings(database_url, workdir))
            try:
                bench(hub, urls, args, workdir)
            finally:
                hub.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def bench(hub: BenchHub, urls: list[str], args: argparse.Namespace, workdir: Path) -> None:
    hub.migrate()
    guids = hub.register(urls, concurrency=args.concurrency)
    peaks: dict[int, int] = {}
    datasets: dict[int, int] = {}
    for size in (args.small, args.large):
        started = time.perf_counter()
        datasets[size] = hub.import_images(f"memory-{size}", size, side=8)
        print(f"imported {size} 8x8 PNGs in {time.perf_counter() - started:.1f}s")
    for size, dataset_id in datasets.items():
        started = time.perf_counter()
        run_id = hub.start_run(dataset_id, guids)
        queued = time.perf_counter() - started
        idle_rss, peak, seconds = run_in_fresh_worker(hub, run_id, workdir / f"worker-{size}.log")
        peaks[size] = peak
        items = size * len(urls)
        print(
            f"run over {size:>7} images ({items} work items; queued in {queued:.1f}s,"
            f" dispatched in {seconds:.1f}s): worker RSS at start {idle_rss / 2**20:6.1f} MiB,"
            f" peak {peak / 2**20:6.1f} MiB"
        )
        print(f"  check: {hub.check_exactly_once(run_id, expected=items)}; {load_average()}")
    small, large = peaks[args.small], peaks[args.large]
    print()
    print(
        f"peak RSS {args.large} / {args.small} images: {large / 2**20:.1f} / {small / 2**20:.1f}"
        f" MiB = {large / small:.3f} (target <= 1.2)"
    )


def run_in_fresh_worker(hub: BenchHub, run_id: int, log_path: Path) -> tuple[int, int, float]:
    """Dispatch the queued run with a new `recoghub worker`; returns its RSS once
    registered, its peak RSS (bytes) and the seconds from start to run completed."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*recoghub_command(), "worker", "--log-level", "warning"],
            env=worker_env(hub.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        reaped = False
        try:
            started = time.perf_counter()
            deadline = time.monotonic() + 60
            while hub.live_workers() < 1:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{tail(log_path)}")
                time.sleep(0.02)
            idle_rss = psutil.Process(proc.pid).memory_info().rss
            try:
                hub.wait_run(run_id, workers=[proc], timeout_s=600)
            except RuntimeError:
                print(tail(log_path))
                raise
            seconds = time.perf_counter() - started
            proc.send_signal(signal.SIGTERM)
            _, status, usage = os.wait4(proc.pid, 0)
            reaped = True
            proc.returncode = os.waitstatus_to_exitcode(status)
            # ru_maxrss is in KiB on Linux.
            return idle_rss, usage.ru_maxrss * 1024, seconds
        finally:
            if not reaped and proc.poll() is None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()

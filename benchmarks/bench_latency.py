"""SPEC §8 "Latency fidelity": recorded latencies vs what the recognizers really took.

    .venv/bin/python benchmarks/bench_latency.py [--sleep-ms 20] [--images 2000]

8 recognizer processes that sleep --sleep-ms before answering; a dry run with 8
requests in flight per service (64 in all) driven by a `recoghub worker` subprocess on
SQLite; its leaderboard's p50/p99 per service vs the p50/p99 of the bare aiohttp + uvloop
reference loop (sleep + bare round trip) at the same 64 in flight over the same images,
measured before and after the run. Target: every service's p50 and p99 within 2 ms.
"""

import argparse
import statistics
from pathlib import Path

import uvloop
from baselines import aiohttp_latencies
from hub_setup import (
    BenchHub,
    bench_hub,
    load_average,
    tail,
    worker_processes,
)

RECOGNIZERS = 8
IN_FLIGHT_PER_SERVICE = 8


def nearest_rank(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * p // 100) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sleep-ms", type=float, default=20.0)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--postgres", metavar="URL", help="run the hub on this PostgreSQL server")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="experiment: gc.freeze() in the workers"
    )
    args = parser.parse_args()

    with bench_hub(
        "latency", recognizers=RECOGNIZERS, sleep_ms=args.sleep_ms, postgres_url=args.postgres
    ) as (hub, urls, workdir):
        bench(hub, urls, args, workdir)


def bench(hub: BenchHub, urls: list[str], args: argparse.Namespace, workdir: Path) -> None:
    hub.migrate()
    dataset_id = hub.import_images("latency", args.images, side=16)
    files = hub.image_files(dataset_id)
    guids = hub.register(urls)
    items = len(files) * len(urls)
    in_flight = IN_FLIGHT_PER_SERVICE * len(urls)
    print(
        f"{len(urls)} recognizers sleeping {args.sleep_ms:g} ms, {in_flight} requests in flight,"
        f" {items} requests each way; {load_average()}"
    )

    reference: list[tuple[float, float]] = []

    def run_reference(label: str) -> None:
        rate, latencies = uvloop.run(aiohttp_latencies(urls, files, IN_FLIGHT_PER_SERVICE))
        p50, p99 = nearest_rank(latencies, 50), nearest_rank(latencies, 99)
        reference.append((p50, p99))
        print(
            f"  reference aiohttp ({label}): p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
            f"  ({rate:.0f} requests/s)"
        )

    run_reference("before")
    with worker_processes(hub, 1, log_dir=workdir, gc_freeze=args.gc_freeze) as procs:
        run_id = hub.start_run(dataset_id, guids, concurrency=IN_FLIGHT_PER_SERVICE)
        try:
            hub.wait_run(run_id, workers=procs, timeout_s=max(120.0, items / 100))
        except RuntimeError:
            print(tail(workdir / "worker-0.log"))
            raise
    timing = hub.timing(run_id)
    rows = hub.leaderboard(run_id)
    p50s = [float(row["latency_ms"]["p50"]) for row in rows]  # type: ignore[index]
    p99s = [float(row["latency_ms"]["p99"]) for row in rows]  # type: ignore[index]
    print(
        f"  RecogHub run {run_id} ({timing.to_completed:.0f} images/s): per-service"
        f" p50 {min(p50s):6.2f} .. {max(p50s):6.2f} ms (median {statistics.median(p50s):.2f}),"
        f" p99 {min(p99s):6.2f} .. {max(p99s):6.2f} ms (median {statistics.median(p99s):.2f})"
    )
    print(f"  check: {hub.check_exactly_once(run_id, expected=items)}")
    run_reference("after")

    ref_p50 = statistics.fmean(p for p, _ in reference)
    ref_p99 = statistics.fmean(p for _, p in reference)
    worst_p50 = max(p50s, key=lambda v: abs(v - ref_p50))
    worst_p99 = max(p99s, key=lambda v: abs(v - ref_p99))
    print()
    print(
        f"sleep {args.sleep_ms:g} ms; bare round trip (reference - sleep): p50"
        f" {ref_p50 - args.sleep_ms:.2f} ms, p99 {ref_p99 - args.sleep_ms:.2f} ms"
    )
    print(
        f"recorded - reference, worst service: p50 {worst_p50 - ref_p50:+.2f} ms,"
        f" p99 {worst_p99 - ref_p99:+.2f} ms (target within 2 ms); {load_average()}"
    )


if __name__ == "__main__":
    main()

"""SPEC §8 "Scale" (reported, PostgreSQL): a run of 20 services x 100,000 images.

    .venv/bin/python benchmarks/bench_scale.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres
        [--services 20] [--images 100000] [--window-s 20] [--workers 1,2,4]

On a database `recoghub_bench_<random>` created on that server (dropped at the end): a
dataset of --images tiny PNGs, --services services spread over 8 fast recognizer
processes (concurrency 4 each). It prints the time to create the run (one work item per
service and image), the bytes per work item with its indexes, the time of the run's
progress read (`GET /runs/{id}`'s service function) and of its leaderboard with nothing
done and again at the end, and the work items claimed and recorded per second with 1, 2
and 4 `recoghub worker` processes, each count measured over --window-s seconds of one
run that goes on between them. Then the projection to 100 teams x 1,000,000 images.
"""

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hub_setup import BenchHub, bench_hub, worker_processes
from processes import load_average, tail
from sqlalchemy import func, select, text

from gateway.runs.models import WorkItem
from gateway.runs.service import leaderboard, run_progress

RECOGNIZERS = 8


def timed_ms(call: Callable[[], Any], repeat: int = 5) -> float:
    """The median wall time of `call`, in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", metavar="URL", required=True)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--window-s", type=float, default=20.0)
    parser.add_argument("--workers", default="1,2,4", help="worker counts, in order")
    args = parser.parse_args()
    with bench_hub("scale", recognizers=RECOGNIZERS, postgres_url=args.postgres) as (
        hub,
        urls,
        workdir,
    ):
        bench(hub, urls, args, workdir)


def reads(hub: BenchHub, run_id: int) -> str:
    with hub.sessions() as session:
        progress = timed_ms(lambda: run_progress(session, run_id=run_id))
        board = timed_ms(lambda: leaderboard(session, run_id=run_id))
    return f"run progress {progress:.1f} ms, leaderboard {board:.1f} ms (median of 5)"


def done_items(hub: BenchHub, run_id: int) -> int:
    with hub.sessions() as session:
        query = select(func.count()).where(WorkItem.run_id == run_id, WorkItem.state == "done")
        return int(session.scalar(query) or 0)


def bench(hub: BenchHub, urls: list[str], args: argparse.Namespace, workdir: Path) -> None:
    hub.migrate()
    started = time.perf_counter()
    dataset_id = hub.import_images("scale", args.images)
    print(f"imported {args.images} images in {time.perf_counter() - started:.0f} s")
    guids = hub.register([urls[n % len(urls)] for n in range(args.services)], concurrency=4)
    items = args.services * args.images
    print(f"{args.services} services x {args.images} images = {items} work items; {load_average()}")

    started = time.perf_counter()
    run_id = hub.start_run(dataset_id, guids)
    create_s = time.perf_counter() - started
    with hub.engine.connect() as conn:
        table = int(conn.scalar(text("SELECT pg_relation_size('work_items')")) or 0)
        total = int(conn.scalar(text("SELECT pg_total_relation_size('work_items')")) or 0)
    per_item = total / items
    print(
        f"create the run: {create_s:.1f} s ({items / create_s:,.0f} work items/s);"
        f" work_items {total / 2**20:,.0f} MiB with indexes ({table / 2**20:,.0f} MiB table):"
        f" {per_item:.0f} bytes an item"
    )
    print(f"nothing done yet: {reads(hub, run_id)}")

    rates = {}
    for count in (int(n) for n in args.workers.split(",")):
        with worker_processes(hub, count, log_dir=workdir) as procs:
            before = done_items(hub, run_id)
            while done_items(hub, run_id) == before:  # the workers have claimed and sent
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError(tail(workdir / "worker-0.log"))
                time.sleep(0.2)
            first, t0 = done_items(hub, run_id), time.perf_counter()
            time.sleep(args.window_s)
            last, t1 = done_items(hub, run_id), time.perf_counter()
        rates[count] = (last - first) / (t1 - t0)
        print(
            f"{count} worker(s): {rates[count]:,.0f} work items claimed and recorded a second"
            f" over {t1 - t0:.0f} s; {load_average()}"
        )
    print(f"{done_items(hub, run_id)} done: {reads(hub, run_id)}")

    big = 100 * 1_000_000
    print()
    print(
        f"projection to 100 teams x 1,000,000 images ({big:,} work items), linear in items:"
        f" creating the run {big / (items / create_s) / 60:,.0f} min,"
        f" work_items {big * per_item / 2**30:,.0f} GiB with indexes,"
        f" sending at the best rate above {big / max(rates.values()) / 3600:,.1f} h"
    )


if __name__ == "__main__":
    main()

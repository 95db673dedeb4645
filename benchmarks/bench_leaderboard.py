"""SPEC §8 "leaderboard under load": GET leaderboard and GET run during a run of 8
services with 100,000 results recorded each, on PostgreSQL, beside the old path.

    .venv/bin/python benchmarks/bench_leaderboard.py [--postgres URL] [--services 8]
        [--recorded 100000] [--pending 10000] [--requests 100] [--old-rounds 1]

Build (bounded, bulk): a dataset of recorded + pending images (rows only), 8 providers
and services, a run created by `create_run` (COPY of the work items); the first
`recorded` images of every service are recorded by one set-based UPDATE (a mix of right
at rank 1, right at rank 3, wrong, timeouts and format errors, latencies 3-150 ms), and
the live scores are filled by the writer's own tally code (`LiveTally.add`) over them,
so the database holds what a worker would have left. The run is `running`, every
service `ongoing`, `pending` images still to send.

Measured: a `recoghub serve` (no embedded worker) answers `--requests` GETs of
`/runs/{id}/leaderboard` and of `/runs/{id}` one after the other (client wall time:
p50, p90, p99, max); beside them the old path, still callable: the full rescore of every
service (`finish.service_scores`, what every leaderboard GET did), in-process,
`--old-rounds` times (the GROUP BY progress of runs from before live scores was retired
with migration 0013); and the writer's cost of
live scores: µs per result of `results.record_scored` against the bare
`results.record_results`, batches of 500 items leased to the benchmark.
Target: leaderboard p50 <= 50 ms.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hub_setup import (  # noqa: E402
    bench_database,
    hub_settings,
    insert_image_rows,
    worker_env,
)
from processes import free_port, recoghub_command  # noqa: E402
from sqlalchemy import select, text, update  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from gateway.datasets.models import Dataset  # noqa: E402
from gateway.db import make_engine  # noqa: E402
from gateway.migrate import upgrade  # noqa: E402
from gateway.registry.models import Instance, Provider, Service  # noqa: E402
from gateway.runs import (  # noqa: E402
    finish,
    models,
    results,  # noqa: E402
)
from gateway.runs.models import Run, RunService  # noqa: E402
from gateway.runs.progress import run_members  # noqa: E402
from gateway.runs.results import ResultRecord  # noqa: E402
from gateway.runs.service import create_run  # noqa: E402
from gateway.scoring.live import LiveTally  # noqa: E402

LABELS = ("red", "green", "blue", "cyan", "gray")
CHUNK = 20_000
T0 = datetime(2026, 11, 30, 0, 0, 0)
BATCH = 500

# One statement records the first `recorded` images of every service: seq = position *
# services + service position, so `seq < recorded * services` is those images.
RECORD_SQL = """
UPDATE work_items w SET
  state = 'done', lease_owner = NULL, lease_expires_at = NULL, attempts = 1,
  request_id = md5(w.id::text),
  outcome = CASE WHEN w.id % 50 = 0 THEN 'timeout' WHEN w.id % 97 = 0 THEN 'bad_format'
                 ELSE 'ok' END,
  latency_ms = CASE WHEN w.id % 50 = 0 OR w.id % 97 = 0 THEN NULL
                    ELSE 3 + (w.id::bigint * 7919 % 1470) / 10.0 END,
  tags = CASE WHEN w.id % 50 = 0 OR w.id % 97 = 0 THEN NULL
              WHEN w.id % 10 < 7 THEN json_build_array(
                json_build_array(i.truth->>0, 0.9), json_build_array('zebra', 0.2))
              WHEN w.id % 10 < 9 THEN json_build_array(json_build_array('zebra', 0.9),
                json_build_array('okapi', 0.5), json_build_array(i.truth->>0, 0.4))
              ELSE json_build_array(json_build_array('zebra', 0.7)) END,
  finished_at = :t0 + (w.seq / :services) * interval '2 milliseconds'
FROM dataset_images i
WHERE i.id = w.image_id AND w.run_id = :run AND w.seq < :cut
"""


def build(database_url: str, *, services: int, recorded: int, pending: int) -> tuple[int, str]:
    """The run described in the module doc; returns its id and prints build times."""
    engine = make_engine(database_url)
    upgrade(engine)
    n = recorded + pending
    began = time.monotonic()
    with Session(engine) as session, session.begin():
        dataset = Dataset(name="bench", format="folder", images=n, labels=len(LABELS))
        session.add(dataset)
        session.flush()
        insert_image_rows(session, dataset_id=dataset.id, count=n, labels=LABELS, chunk=CHUNK)
        guids = []
        for k in range(services):
            provider = Provider(
                guid=str(uuid.uuid4()), name=f"team{k}", api_key_hash=uuid.uuid4().hex * 2
            )
            guid = str(uuid.uuid4())
            session.add_all(
                [
                    provider,
                    Service(
                        guid=guid,
                        provider=provider,
                        name=f"svc{k}",
                        signing_secret="x",
                        instances=[Instance(position=0, url="http://127.0.0.1:9")],
                    ),
                ]
            )
            guids.append(guid)
        dataset_id = dataset.id
    print(f"dataset of {n:,} images: {time.monotonic() - began:.1f} s")
    settings = hub_settings(database_url, Path(tempfile.gettempdir()))
    began = time.monotonic()
    with Session(engine) as session:
        run = create_run(
            session, settings=settings, dataset=dataset_id, phase="evaluation", service_guids=guids
        )
        run_id = run.id
    print(f"create_run, {n * services:,} work items: {time.monotonic() - began:.1f} s")
    began = time.monotonic()
    with engine.begin() as conn:
        conn.execute(
            text(RECORD_SQL),
            {"t0": T0, "services": services, "run": run_id, "cut": recorded * services},
        )
        conn.execute(update(Run).where(Run.id == run_id).values(state="running", started_at=T0))
        conn.execute(update(RunService).where(RunService.run_id == run_id).values(status="ongoing"))
    print(
        f"{recorded * services:,} results recorded (one UPDATE): {time.monotonic() - began:.1f} s"
    )
    began = time.monotonic()
    tallies: dict[int, LiveTally] = defaultdict(LiveTally)
    wi, im = models.WORK_ITEMS, models.IMAGES
    with engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=10_000).execute(
            select(
                wi.c.run_service_id,
                wi.c.outcome,
                wi.c.tags,
                wi.c.latency_ms,
                wi.c.finished_at,
                im.c.truth,
            )
            .join(im, im.c.id == wi.c.image_id)
            .where(wi.c.run_id == run_id, wi.c.state == "done")
        )
        for row in rows:
            tallies[row.run_service_id].add(
                outcome=row.outcome,
                tags=row.tags,
                truth=row.truth,
                latency_ms=row.latency_ms,
                finished_at=row.finished_at,
            )
    with engine.begin() as conn:
        for rs, tally in tallies.items():
            conn.execute(
                update(models.LIVE_SCORES)
                .where(models.LIVE_SCORES.c.run_service_id == rs)
                .values(**tally.columns())
            )
    print(f"live scores filled by the writer's tally: {time.monotonic() - began:.1f} s")
    engine.dispose()
    return run_id, settings.admin_token or ""


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(p: float) -> float:
        return ordered[max(0, min(len(ordered) - 1, int(round(p * len(ordered))) - 1))]

    return (
        f"p50 {statistics.median(ordered) * 1000:7.2f} ms  p90 {at(0.9) * 1000:7.2f}  "
        f"p99 {at(0.99) * 1000:7.2f}  max {ordered[-1] * 1000:7.2f}  (n={len(ordered)})"
    )


def time_gets(url: str, token: str, path: str, count: int) -> list[float]:
    samples = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        client.get(path, timeout=600).raise_for_status()  # warm
        for _ in range(count):
            began = time.perf_counter()
            client.get(path, timeout=600).raise_for_status()
            samples.append(time.perf_counter() - began)
    return samples


def serve_and_measure(database_url: str, token: str, run_id: int, requests: int) -> None:
    settings = hub_settings(database_url, Path(tempfile.gettempdir()), admin_token=token)
    port = free_port()
    server = subprocess.Popen(
        [*recoghub_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**worker_env(settings), "RECOGHUB_EMBEDDED_WORKER": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api/v1/ping", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        board = time_gets(url, token, f"/api/v1/runs/{run_id}/leaderboard", requests)
        progress = time_gets(url, token, f"/api/v1/runs/{run_id}", requests)
        rows = httpx.get(
            f"{url}/api/v1/runs/{run_id}/leaderboard",
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        print(f"NEW GET leaderboard   {summary(board)}")
        print(f"NEW GET /runs/{{id}}    {summary(progress)}")
        first = rows[0]
        print(
            f"    rows: {len(rows)}, first: images {first['images']:,}/{first['images_total']:,} "
            f"provisional {first['provisional']} top1 {first['top1']:.4f} "
            f"p50 {first['latency_ms']['p50']:.2f} ms"
        )
    finally:
        server.terminate()
        server.wait(30)


def old_path(database_url: str, run_id: int, rounds: int) -> None:
    engine = make_engine(database_url)
    try:
        board = []
        for _ in range(rounds):
            with Session(engine) as session:
                members = run_members(session, run_id)
                began = time.perf_counter()
                for m in members:
                    finish.service_scores(session.connection(), run_service_id=m.id)
                board.append(time.perf_counter() - began)
        print(f"OLD leaderboard (rescore) {summary(board)}")
    finally:
        engine.dispose()


def writer_cost(database_url: str, run_id: int, batches: int) -> None:
    """µs per result of recording with and without live scores, alternate batches."""
    engine = make_engine(database_url)
    wi, im = models.WORK_ITEMS, models.IMAGES
    try:
        with engine.begin() as conn:
            rows = conn.execute(
                select(wi.c.id, wi.c.run_service_id, im.c.truth)
                .join(im, im.c.id == wi.c.image_id)
                .where(wi.c.run_id == run_id, wi.c.state == "pending")
                .order_by(wi.c.seq)
                .limit(2 * batches * BATCH)
            ).all()
            conn.execute(
                update(wi)
                .where(wi.c.id.in_([r.id for r in rows]))
                .values(
                    state="leased", lease_owner="bench", lease_expires_at=T0 + timedelta(days=9)
                )
            )
        with_live, bare = [], []
        for b in range(2 * batches):
            chunk = rows[b * BATCH : (b + 1) * BATCH]
            now = datetime.now()
            batch = [
                ResultRecord(
                    item_id=r.id,
                    run_service_id=r.run_service_id,
                    outcome="ok",
                    attempts=1,
                    latency_ms=12.5,
                    queue_ms=0.1,
                    http_status=200,
                    request_id=uuid.uuid4().hex,
                    raw=f"{r.truth[0]}:0.9;zebra:0.1",
                    tags=[(r.truth[0], 0.9), ("zebra", 0.1)],
                    detail=None,
                    attempt_log=[{"n": 1, "instance": 0, "outcome": "ok"}],
                    finished_at=now,
                    truth=r.truth,
                )
                for r in chunk
            ]
            began = time.perf_counter()
            with engine.begin() as conn:
                if b % 2 == 0:
                    results.record_scored(conn, worker_id="bench", batch=batch)
                else:
                    results.record_results(conn, worker_id="bench", results=batch)
            (with_live if b % 2 == 0 else bare).append(time.perf_counter() - began)
        per = 1e6 / BATCH
        live_us = statistics.median(with_live) * per
        bare_us = statistics.median(bare) * per
        print(
            f"writer, batches of {BATCH}: record_scored {live_us:.1f} µs/result, "
            f"record_results alone {bare_us:.1f} µs/result (live scores +{live_us - bare_us:.1f})"
        )
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("RECOGHUB_TEST_POSTGRES_URL"),
        help="PostgreSQL server (default: $RECOGHUB_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--services", type=int, default=8)
    parser.add_argument("--recorded", type=int, default=100_000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--old-rounds", type=int, default=1)
    parser.add_argument("--writer-batches", type=int, default=10)
    args = parser.parse_args()
    if not args.postgres:
        parser.error("give --postgres URL (or set RECOGHUB_TEST_POSTGRES_URL)")
    with tempfile.TemporaryDirectory(prefix="recoghub-bench-board-") as tmp:
        with bench_database(Path(tmp), args.postgres) as database_url:
            run_id, token = build(
                database_url,
                services=args.services,
                recorded=args.recorded,
                pending=args.pending,
            )
            serve_and_measure(database_url, token, run_id, args.requests)
            if args.old_rounds:
                old_path(database_url, run_id, args.old_rounds)
            writer_cost(database_url, run_id, args.writer_batches)


if __name__ == "__main__":
    main()

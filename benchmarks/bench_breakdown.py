"""Where a work item's CPU goes: each part of the dispatch path measured alone.

    .venv/bin/python benchmarks/bench_breakdown.py [--images 2000] [--claim 64]

CPU time (this process, user + system) per item, so the figures hold on a loaded machine
better than wall-clock rates do. Sending: 32 requests in flight to 8 fast recognizers,
(1) bare aiohttp as in baselines.py, (2) the hub's client (`RECOGHUB_HTTP_CLIENT`) with
the hub's signed headers, (3) `Dispatcher.recognize`. Database, on a SQLite run of 8
services x --images: (4) `store.claim_items` of --claim items per service at a time,
(5) `load_pictures`, (6) `ResultRecord.of`, (7) `results.record_results` 500 rows a
transaction, (8) live scoring (`ServiceScorer.add`, what a worker does per result), (9)
`finish.finish_service` scoring from the database (what it does instead for a lane over
the live-scoring limit). The sum of (3)..(8) against (1) is the CPU a worker spends per
image beyond the bare loop, before its own bookkeeping (queues, tasks, threads).
"""

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import aiohttp
import uvloop
import wreq
from hub_setup import BenchHub, bench_database, hub_settings, tiny_png
from processes import load_average
from recognizers import fast_recognizers

from gateway.db import utcnow
from gateway.dispatch.answers import Target
from gateway.dispatch.client import make_client_session
from gateway.dispatch.dispatcher import Dispatcher
from gateway.protocol import signing
from gateway.protocol.result_string import MAX_RESULT_BYTES
from gateway.runs import finish, results
from gateway.runs.engine import store
from gateway.runs.engine.images import load_pictures
from gateway.runs.results import ResultRecord
from gateway.scoring.metrics import ServiceScorer

IN_FLIGHT = 32
RESULT_BATCH = 500


def cpu() -> float:
    return time.process_time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--claim", type=int, default=64, help="items claimed per service")
    parser.add_argument("--requests", type=int, default=20000, help="per sending variant")
    parser.add_argument(
        "--sending-only", action="store_true", help="measure (1)..(3) alone, no database"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="recoghub-bench-breakdown-"))
    try:
        with fast_recognizers(8) as urls, bench_database(workdir, None) as database_url:
            print(f"{load_average()}")
            answers = uvloop.run(sending(urls, args.requests))
            if args.sending_only:
                return
            hub = BenchHub(hub_settings(database_url, workdir))
            try:
                database_parts(hub, urls, args, answers)
            finally:
                hub.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def report(name: str, seconds: float, count: int) -> float:
    per_item = seconds / count * 1e6
    print(f"  {name:52} {per_item:7.1f} µs CPU per item ({count} items)")
    return per_item


async def sending(urls: list[str], requests: int) -> list[object]:
    image = tiny_png(1, side=16)
    settings = hub_settings("sqlite://", Path("/nonexistent"))
    targets = [
        Target(
            service_guid=f"00000000-0000-0000-0000-00000000000{n}",
            provider_guid=f"00000000-0000-0000-0000-0000000000a{n}",
            instances=(url,),
            signing_secret="s" * 43,
        )
        for n, url in enumerate(urls)
    ]
    answers: list[object] = []

    async def drive(name: str, send: Callable[[int], Awaitable[None]]) -> None:
        counter = iter(range(requests))

        async def lane() -> None:
            for n in counter:
                await send(n)

        for n in range(IN_FLIGHT):  # warm every connection up
            await send(n)
        started_cpu, started = cpu(), time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))
        seconds = time.perf_counter() - started
        report(f"{name} ({requests / seconds:.0f}/s)", cpu() - started_cpu, requests)

    print(f"sending, {IN_FLIGHT} in flight to {len(urls)} recognizers:")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as bare:

        async def send_bare(n: int) -> None:
            async with bare.post(
                urls[n % 8] + "/recognize", data=image, headers={"Content-Type": "image/png"}
            ) as response:
                await response.read()

        await drive("(1) bare aiohttp", send_bare)

    client = wreq.Client()
    try:

        async def send_wreq(n: int) -> None:
            async with client.post(
                urls[n % 8] + "/recognize", body=image, headers={"Content-Type": "image/png"}
            ) as response:
                await response.bytes()

        await drive("(1b) bare wreq", send_wreq)
    finally:
        client.close()

    http = make_client_session(settings)
    try:
        digest = signing.body_digest(image)

        async def send_signed(n: int) -> None:
            target = targets[n % 8]
            request_id, stamp = f"{n:032x}", str(int(time.time()))
            headers = {
                "Content-Type": "image/png",
                signing.HEADER_REQUEST_ID: request_id,
                signing.HEADER_SERVICE_GUID: target.service_guid,
                signing.HEADER_PROVIDER_GUID: target.provider_guid,
                signing.HEADER_TIMESTAMP: stamp,
                signing.HEADER_SIGNATURE: signing.sign(
                    target.signing_secret, timestamp=stamp, request_id=request_id, digest=digest
                ),
            }
            await http.fetch(
                "POST",
                target.instances[0] + "/recognize",
                body=image,
                headers=headers,
                timeout_s=10,
                limit=MAX_RESULT_BYTES,
                preview=200,
            )

        await drive(f"(2) hub client ({settings.http_client}), signed headers", send_signed)

        dispatcher = Dispatcher(http, settings)

        async def send_dispatcher(n: int) -> None:
            answer = await dispatcher.recognize(
                targets[n % 8], image, content_type="image/png", digest=digest
            )
            if len(answers) < 1:
                answers.append(answer)

        await drive("(3) Dispatcher.recognize", send_dispatcher)
    finally:
        await http.close()
    return answers


def database_parts(
    hub: BenchHub, urls: list[str], args: argparse.Namespace, answers: list[object]
) -> None:
    hub.migrate()
    dataset_id = hub.import_images("breakdown", args.images, side=16)
    guids = hub.register(urls)
    run_id = hub.start_run(dataset_id, guids)
    worker_id = "breakdown-worker"
    lanes = hub.lanes_of(run_id, worker_id)
    items = args.images * len(lanes)
    print(f"database (SQLite, {len(lanes)} services x {args.images} images):")

    claimed: list[store.ClaimedItem] = []
    refs: dict[int, store.ImageRef] = {}
    started = cpu()
    while True:
        now = utcnow()
        with hub.engine.begin() as conn:
            got, got_refs = store.claim_items(
                conn,
                worker_id=worker_id,
                wants=dict.fromkeys(lanes, args.claim),
                mark_ongoing=lanes,
                now=now,
                expires=now + timedelta(seconds=30),
            )
        if not got:
            break
        for batch in got.values():
            claimed.extend(batch)
        refs.update(got_refs)
    report(f"(4) claim_items, {args.claim} per service a call", cpu() - started, len(claimed))

    started = cpu()
    load_pictures(hub.settings.data_dir, list(refs.values()))
    report("(5) load_pictures (read + sha256), per image", cpu() - started, len(refs))

    answer = answers[0]
    started = cpu()
    rows = [
        ResultRecord.of(
            answer,  # type: ignore[arg-type]
            item_id=item.item_id,
            run_service_id=0,
            queue_ms=1.0,
            truth=["red"],
        )
        for item in claimed
    ]
    report("(6) ResultRecord.of", cpu() - started, len(rows))

    started = cpu()
    for start in range(0, len(rows), RESULT_BATCH):
        with hub.engine.begin() as conn:
            results.record_results(
                conn, worker_id=worker_id, results=rows[start : start + RESULT_BATCH]
            )
    report(f"(7) record_results, {RESULT_BATCH} a transaction", cpu() - started, len(rows))

    started = cpu()
    scorer = ServiceScorer()
    for row in rows:
        scorer.add(
            outcome=row.outcome,
            tags=row.tags or (),
            truth=row.truth,
            latency_ms=row.latency_ms,
        )
    scorer.result(elapsed_s=1.0)
    report("(8) ServiceScorer.add, live scoring of each result", cpu() - started, len(rows))

    started = cpu()
    for lane in lanes:
        with hub.engine.begin() as conn:
            finish.finish_service(conn, run_service_id=lane, phase="dryrun")
    report("(9) finish_service, scoring streamed from the database", cpu() - started, items)
    print(f"  check: {hub.check_exactly_once(run_id, expected=items)}; {load_average()}")


if __name__ == "__main__":
    main()

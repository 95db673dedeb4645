"""The recording process's CPU per work item, measured in-process: its claims and its
results.

    .venv/bin/python benchmarks/bench_recording.py [--images 5000] [--claim 36]
        [--batch 500] [--rounds 3] [--postgres URL] [--profile FILE]

On a run of 8 services x --images (SQLite, or a PostgreSQL database of its own), each
round claims every item as the worker's claimer does (`store.claim_items`, --claim items
per service a call, the images of the last calls known), then records a result for each
as the writer's batches are recorded: each call's frame unpickled (`recorder.serve`), run
in a transaction of its own (`threads.in_transaction`), its reply pickled. A result is
what the writer sends: `records.result_row` of an `ok` answer with
five tags, one attempt, and the image's true tags; `recording.record_rows` writes it
guarded by the lease, adds it to the live scores and, once committed, to its lane's live
scorer. CPU time of this process per item for each part, the best of --rounds (each
claims and records every item again, as a worker of its own); with --profile, a cProfile
of the last round's results written to FILE (`python -m pstats FILE`). Each round is
checked: each item done once, and the live scores count every item.

CPU time is unsteady on a shared machine. One part (--count, the results unless told)
runs inside `functools.reduce`, so that Valgrind counts the instructions of that part
alone, a figure that other processes do not move:

    valgrind --tool=callgrind --toggle-collect=functools_reduce \
        --callgrind-out-file=/tmp/recording.cg .venv/bin/python \
        benchmarks/bench_recording.py --images 1000 --rounds 1 [--count claims]

(its "Collected" count over the items; `callgrind_annotate` shows where).
"""

import argparse
import cProfile
import functools
import gc
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from hub_setup import BenchHub, bench_database, hub_settings
from processes import load_average
from sqlalchemy import Engine, select, update

from gateway.db import utcnow
from gateway.dispatch.answers import Answer, Attempt
from gateway.errors import Outcome
from gateway.protocol.result_string import parse_result
from gateway.runs.engine import recorder, recording, store
from gateway.runs.engine.threads import in_transaction
from gateway.runs.models import LIVE_SCORES, WORK_ITEMS, ItemState
from gateway.runs.records import result_row
from gateway.scoring.live import LiveTally

T = TypeVar("T")
ANSWER = "red:0.9;green:0.05;blue:0.03;cyan:0.01;gray:0.01"  # fast_recognizer's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500, help="rows a call (the writer's)")
    parser.add_argument("--claim", type=int, default=36, help="items claimed per service a call")
    parser.add_argument(
        "--rounds", type=int, default=3, help="record every item again this often (best kept)"
    )
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server to use")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the results")
    parser.add_argument(
        "--count",
        choices=("claims", "results"),
        default="results",
        help="the part run in functools.reduce (Valgrind's count)",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="recoghub-bench-recording-"))
    try:
        with bench_database(workdir, args.postgres) as database_url:
            hub = BenchHub(hub_settings(database_url, workdir))
            try:
                measure(hub, args)
            finally:
                hub.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure(hub: BenchHub, args: argparse.Namespace) -> None:
    hub.migrate()
    dataset_id = hub.import_images("recording", args.images, side=8)
    guids = hub.register([f"http://127.0.0.1:{9000 + n}" for n in range(8)])
    run_id = hub.start_run(dataset_id, guids)
    worker_id = "bench-recording"
    lanes = hub.lanes_of(run_id, worker_id)
    scored = {lane: serial for serial, lane in enumerate(lanes, start=1)}
    print(
        f"{hub.engine.dialect.name}: {len(lanes)} services x {args.images} images;"
        f" claims of {args.claim} per service, {args.batch} results a call"
    )
    # As the recording process has it (`recorder.serve`).
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    best = {"claim": float("inf"), "record": float("inf")}
    for round_ in range(1, args.rounds + 1):
        if round_ > 1:  # a worker of its own: its lanes' scorers start empty
            worker_id = f"bench-recording-{round_}"
            pend_again(hub, run_id)
        claims = Claims(worker_id, lanes, args.claim, hub.engine)
        started = time.process_time()
        claim_all(claims, -(-args.images // args.claim), counted=args.count == "claims")
        claim_s = time.process_time() - started
        rows = result_rows(claims.items, claims.truths)
        frames = calls(rows, worker_id=worker_id, scored=scored, batch=args.batch)
        profile = cProfile.Profile() if args.profile and round_ == args.rounds else None
        started, started_wall = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        written = steps(partial(record, hub.engine), 0, frames, counted=args.count == "results")
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        record_s, wall = time.process_time() - started, time.perf_counter() - started_wall
        best = {"claim": min(best["claim"], claim_s), "record": min(best["record"], record_s)}
        print(
            f"  round {round_}: claims {claim_s / len(rows) * 1e6:.1f} µs CPU per item;"
            f" results {record_s / len(rows) * 1e6:.1f} µs CPU per item"
            f" ({wall / len(rows) * 1e6:.1f} µs wall; {written} of {len(rows)} written)"
        )
        with hub.engine.connect() as conn:
            counted = sum(conn.execute(select(LIVE_SCORES.c.images)).scalars())
        print(
            f"    check: {hub.check_exactly_once(run_id, expected=len(rows))};"
            f" live scores count {counted} of {len(rows)}"
        )
    items = args.images * len(lanes)
    print(
        f"  best: claims {best['claim'] / items * 1e6:.1f} µs CPU per item,"
        f" results (record_rows) {best['record'] / items * 1e6:.1f}; {load_average()}"
    )


@dataclass
class Claims:
    """What the claims of a round have leased so far (see `claim_all`)."""

    worker_id: str
    lanes: list[int]
    per_lane: int
    engine: Engine
    items: list[tuple[int, store.ClaimedItem]] = field(default_factory=list)
    truths: dict[int, list[str]] = field(default_factory=dict)
    known: list[int] = field(default_factory=list)


def claim_all(claims: Claims, calls: int, *, counted: bool) -> None:
    """`calls` claims as the claimer makes them, `per_lane` items per service, the images
    of the last ones known; each call unpickled and its reply pickled as the recording
    process does (in `functools.reduce` if `counted`). Then `claims.items` holds the
    (lane, item) leased, interleaved as answers arrive."""
    steps(claim, claims, range(calls), counted=counted)
    claims.items.sort(key=lambda pair: (pair[1].seq, pair[0]))


def claim(claims: Claims, _: int) -> Claims:
    now = utcnow()
    call = {
        "worker_id": claims.worker_id,
        "wants": dict.fromkeys(claims.lanes, claims.per_lane),
        "mark_ongoing": [] if claims.items else claims.lanes,
        "now": now,
        "expires": now + timedelta(hours=1),
        "known_images": set(claims.known[-4 * claims.per_lane :]),
    }
    _, _, fn, kwargs = pickle.loads(pickle.dumps((0, "hot", store.claim_items, call)))
    got, refs = in_transaction(claims.engine, fn, kwargs)
    pickle.dumps((0, True, (got, refs)), recorder.PROTOCOL)
    for lane, items in got.items():
        claims.items.extend((lane, item) for item in items)
    claims.truths.update((ref.image_id, ref.truth) for ref in refs.values())
    claims.known.extend(refs)
    return claims


def steps(step: Callable[[T, Any], T], state: T, each: Iterable[Any], *, counted: bool) -> T:
    """`step` over `each`: in `functools.reduce` when `counted` (see the module's
    docstring), in a plain loop otherwise."""
    if counted:
        return functools.reduce(step, each, state)
    for one in each:
        state = step(state, one)
    return state


def result_rows(
    claimed: list[tuple[int, store.ClaimedItem]], truths: dict[int, list[str]]
) -> list[tuple[Any, ...]]:
    """The writer's rows of an `ok` answer to each claimed item."""
    return [
        result_row(
            _answer(n),
            item_id=item.item_id,
            run_service_id=lane,
            queue_ms=0.5,
            truth=truths[item.image_id],
            part=None,
            finished_us=time.time_ns() // 1000,
        )
        for n, (lane, item) in enumerate(claimed)
    ]


def record(engine: Engine, written: int, frame: bytes) -> int:
    """One call of the writer, as the recording process runs it."""
    _, _, fn, kwargs = pickle.loads(frame)
    return written + in_transaction(engine, fn, kwargs)


def pend_again(hub: BenchHub, run_id: int) -> None:
    """Every item of the run pending again and its live scores emptied: the next round
    claims and records the same items afresh."""
    empty = LiveTally().columns()
    with hub.engine.begin() as conn:
        conn.execute(
            update(WORK_ITEMS)
            .where(WORK_ITEMS.c.run_id == run_id)
            .values(state=ItemState.PENDING, lease_owner=None, lease_expires_at=None)
        )
        conn.execute(update(LIVE_SCORES).where(LIVE_SCORES.c.run_id == run_id).values(**empty))


def calls(
    rows: list[tuple[Any, ...]], *, worker_id: str, scored: dict[int, int], batch: int
) -> list[bytes]:
    """The writer's calls of `rows`, pickled as `Recorder` sends them."""
    return [
        pickle.dumps(
            (
                n,
                "hot",
                recording.record_rows,
                {"worker_id": worker_id, "rows": rows[start : start + batch], "scored": scored},
            ),
            protocol=recorder.PROTOCOL,
        )
        for n, start in enumerate(range(0, len(rows), batch))
    ]


def _answer(n: int) -> Answer:
    latency = 0.4 + (n % 97) / 50
    return Answer(
        request_id=f"{n:032x}",
        outcome=Outcome.OK,
        tags=parse_result(ANSWER),
        raw=ANSWER,
        latency_ms=latency,
        status=200,
        detail=None,
        attempts=[Attempt(1, "http://127.0.0.1:9000", Outcome.OK, latency, 200)],
    )


if __name__ == "__main__":
    main()

"""The dispatch engine against real recognizers on 127.0.0.1, on SQLite and PostgreSQL."""

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.config import Settings
from gateway.datasets.models import DatasetImage
from gateway.datasets.storage import image_path
from gateway.registry.models import Service
from gateway.runs import finish, service
from gateway.runs.models import Run, RunService, ServiceSlot
from tests.runs.builders import (
    add_dataset,
    add_service,
    answers_by_image,
    item_counts,
    make_images,
    recognizer_app,
    run_state,
    statuses,
    work_items,
)
from tests.runs.conftest import running_worker, start_run, wait_until


def completed(engine: Engine, run_id: int) -> bool:
    return run_state(engine, run_id) == "completed"


def assert_each_item_once(engine: Engine, run_id: int, n_services: int, n_images: int) -> None:
    items = work_items(engine, run_id)
    assert len(items) == n_services * n_images
    assert len({(i.run_service_id, i.image_id) for i in items}) == len(items)
    assert all(i.state == "done" and i.outcome is not None for i in items)
    assert all(i.finished_at is not None and i.request_id for i in items)


async def test_dry_run_records_every_answer_and_scores_it_exactly(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    images = make_images(10, label=lambda i: f"dog{i}")
    answers = {}
    for i, image in enumerate(images):
        truth = image.truth[0]
        if i < 5:  # right at rank 1
            answers[image.key] = f"{truth}:0.95;cat:0.1"
        elif i < 8:  # right at rank 3
            answers[image.key] = f"cat:0.6;cow:0.5;{truth}:0.4"
        else:  # wrong
            answers[image.key] = "cat:0.5"
    good_app, good_seen = recognizer_app(answers_by_image(images, answers))
    wrong_app, wrong_seen = recognizer_app(lambda body: "zzz:1")
    dataset = add_dataset(run_engine, data_dir, images)
    good_url = serve(good_app)
    good = add_service(run_engine, [good_url], name="good")
    wrong = add_service(run_engine, [serve(wrong_app)], name="wrong")
    run_id = start_run(run_engine, settings, dataset=dataset, phase="dryrun", seed=7)

    async with running_worker(run_engine, settings):
        await wait_until(lambda: completed(run_engine, run_id), "the run to complete")

    assert statuses(run_engine, run_id) == {good: "passed", wrong: "passed"}
    assert_each_item_once(run_engine, run_id, 2, 10)
    assert good_seen.requests == wrong_seen.requests == 10
    with Session(run_engine) as session:
        board = service.leaderboard(session, run_id=run_id)
        assert [row["service_guid"] for row in board] == [good, wrong]
        best = board[0]
        assert best["rank"] == 1 and best["provider_name"] == "good"
        assert best["images"] == 10
        assert best["top1"] == pytest.approx(0.5)
        assert best["top5"] == pytest.approx(0.8)
        assert best["coverage_at_95"] == pytest.approx(0.5)
        # µAP: five true pairs ranked 1..5, then three at ranks 14, 15, 16 of 10 true pairs.
        assert best["micro_ap"] == pytest.approx((5 + 6 / 14 + 7 / 15 + 8 / 16) / 10)
        assert best["outcomes"]["ok"] == 10 and best["latency_ms"]["p50"] is not None
        assert board[1]["top1"] == 0.0 and board[1]["top5"] == 0.0

        progress = service.run_progress(session, run_id=run_id)
        assert progress.run.state == "completed" and progress.run.finished_at is not None
        assert [(s.done, s.total, s.status) for s in progress.services] == [
            (10, 10, "passed"),
            (10, 10, "passed"),
        ]
        assert progress.services[0].outcomes == {
            "ok": 10,
            "timeout": 0,
            "connect_error": 0,
            "http_error": 0,
            "bad_format": 0,
            "too_large": 0,
            "unreachable": 0,
            "missed": 0,
        }

        rows = list(service.iter_results(session, run_id=run_id, service_guid=good))
        progress_ids = {
            str(row[0]): int(row[1])
            for row in session.execute(
                select(Service.guid, RunService.id)
                .join(RunService, RunService.service_id == Service.id)
                .where(RunService.run_id == run_id)
            )
        }
        ranks = {row.key: row.true_rank for row in rows}
        assert ranks == {
            image.key: (1 if i < 5 else 3 if i < 8 else None) for i, image in enumerate(images)
        }
        # Scored as results were recorded; a pass over the database agrees.
        stored = session.get(RunService, progress_ids[good])
        assert stored is not None and stored.scores is not None
        streamed = finish.service_scores(session.connection(), run_service_id=stored.id)
        assert {**stored.scores, "images_per_s": None} == {**streamed, "images_per_s": None}
        item = next(i for i in work_items(run_engine, run_id) if i.run_service_id == stored.id)
        assert item.attempt_log is not None and item.queue_ms is not None
        # Every attempt is recorded: its number, instance, outcome and latency (SPEC §2).
        [attempt] = item.attempt_log
        assert attempt == {
            "n": 1,
            "instance": good_url,
            "outcome": "ok",
            "latency_ms": item.latency_ms,
            "status": 200,
            "detail": None,
        }
        assert item.http_status == 200

        first = next(row for row in rows if row.key == "img000")
        assert first.tags == [{"tag": "dog0", "score": 0.95}, {"tag": "cat", "score": 0.1}]
        assert first.outcome == "ok" and first.attempts == 1 and first.raw == answers["img000"]


async def test_tag_identity_and_latency_of_the_answering_attempt_through_a_run(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    # SPEC §2/§6: `Cat` and `cat` are one tag (dog is the 5th distinct tag, so top-5
    # right), true tags fold like answer tags, a body of only ';' abstains; and the
    # latency recorded is that of the attempt that produced the outcome, not the sum.
    images = make_images(3, label=lambda i: ["Dog", "STRASSE", "owl"][i])
    answers = {
        "img000": "Cat:0.9;cat:0.8;a:0.7;b:0.6;c:0.5;dog:0.4",
        "img001": "straße:0.9",
        "img002": " ; ; ",
    }
    answer = answers_by_image(images, answers)
    first_seen: set[bytes] = set()
    lock = threading.Lock()

    async def recognize(request: Request) -> Response:
        body = await request.body()
        with lock:
            first = body not in first_seen
            first_seen.add(body)
        if first:  # a slow failure first: its time must not land in the latency figures
            await asyncio.sleep(0.2)
            return PlainTextResponse("busy", status_code=503)
        return PlainTextResponse(answer(body))

    app = Starlette(routes=[Route("/recognize", recognize, methods=["POST"])])
    dataset = add_dataset(run_engine, data_dir, images)
    guid = add_service(run_engine, [serve(app)], name="folded")
    run_id = start_run(run_engine, settings, dataset=dataset, phase="dryrun", seed=3)

    async with running_worker(run_engine, settings):
        await wait_until(lambda: completed(run_engine, run_id), "the run to complete")

    items = work_items(run_engine, run_id)
    assert [i.outcome for i in items] == ["ok"] * 3
    for item in items:
        assert item.attempt_log is not None
        assert [a["outcome"] for a in item.attempt_log] == ["http_error", "ok"]
        assert item.attempt_log[0]["latency_ms"] >= 200.0
        assert item.latency_ms == item.attempt_log[-1]["latency_ms"]
    with Session(run_engine) as session:
        [row] = service.leaderboard(session, run_id=run_id)
        assert row["top1"] == pytest.approx(1 / 3) and row["top5"] == pytest.approx(2 / 3)
        assert row["latency_ms"]["max"] == max(i.latency_ms for i in items)
        ranks = {
            r.key: r.true_rank
            for r in service.iter_results(session, run_id=run_id, service_guid=guid)
        }
        tags = {
            r.key: r.tags for r in service.iter_results(session, run_id=run_id, service_guid=guid)
        }
    assert ranks == {"img000": 5, "img001": 1, "img002": None}
    assert [t["tag"] for t in tags["img000"]] == ["Cat", "a", "b", "c", "dog"]
    assert tags["img002"] == []


def image_orders(engine: Engine, run_id: int) -> dict[int, list[int]]:
    """Run service id -> the image ids of its items in the run's (seq) order."""
    orders: dict[int, list[int]] = {}
    for item in work_items(engine, run_id):
        orders.setdefault(item.run_service_id, []).append(item.image_id)
    return orders


async def test_every_service_gets_the_same_seeded_order(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    images = make_images(24)
    apps = [recognizer_app(lambda body: "x:1") for _ in range(3)]
    dataset = add_dataset(run_engine, data_dir, images)
    guids = [add_service(run_engine, [serve(app)]) for app, _ in apps]
    run_id = start_run(
        run_engine, settings, dataset=dataset, phase="evaluation", seed=12345, concurrency=1
    )
    with Session(run_engine) as session:
        rows = session.execute(
            select(DatasetImage.id, DatasetImage.key).order_by(DatasetImage.position)
        ).all()
    dataset_order = [image_id for image_id, _ in rows]

    orders = image_orders(run_engine, run_id)
    [order] = {tuple(o) for o in orders.values()}  # every service: one and the same order
    assert sorted(order) == sorted(dataset_order)  # each image once
    assert list(order) != dataset_order  # shuffled (24! orders: not the same by chance)
    # Interleaved: the run goes round the services, the n-th round is the n-th image.
    items = work_items(run_engine, run_id)
    for n in range(len(images)):
        round_ = items[n * 3 : (n + 1) * 3]
        assert {i.run_service_id for i in round_} == set(orders)
        assert {i.image_id for i in round_} == {order[n]}
    # Seeded: the same seed gives the same order again, another seed another one.
    again = start_run(run_engine, settings, dataset=dataset, phase="evaluation", seed=12345)
    other = start_run(run_engine, settings, dataset=dataset, phase="evaluation", seed=54321)
    assert {tuple(o) for o in image_orders(run_engine, again).values()} == {order}
    assert {tuple(o) for o in image_orders(run_engine, other).values()} != {order}
    with Session(run_engine) as session:  # only the first run is sent
        for later in (again, other):
            service.cancel_run(session, run_id=later)

    async with running_worker(run_engine, settings):
        await wait_until(lambda: completed(run_engine, run_id), "the run to complete")

    # One request at a time per service: each recognizer saw the images in that order.
    digest_of = {image_id: next(i.digest for i in images if i.key == key) for image_id, key in rows}
    for (_, seen), guid in zip(apps, guids, strict=True):
        assert seen.digests[guid] == [digest_of[image_id] for image_id in order]
        assert seen.max_in_flight == 1


async def test_a_dead_team_fails_with_a_reason_while_live_teams_pass(
    run_engine: Engine,
    settings: Settings,
    data_dir: Path,
    serve: Any,
    refused_url: Callable[[], str],
) -> None:
    images = make_images(8)
    dataset = add_dataset(run_engine, data_dir, images)
    live = [add_service(run_engine, [serve(recognizer_app(lambda b: "x:1")[0])]) for _ in range(2)]
    dead = add_service(run_engine, [refused_url()], name="dead")
    run_id = start_run(run_engine, settings, dataset=dataset, phase="dryrun", max_attempts=1)

    async with running_worker(run_engine, settings):
        await wait_until(lambda: completed(run_engine, run_id), "the run to complete")

    assert statuses(run_engine, run_id) == {live[0]: "passed", live[1]: "passed", dead: "failed"}
    assert_each_item_once(run_engine, run_id, 3, 8)
    with Session(run_engine) as session:
        progress = service.run_progress(session, run_id=run_id)
        failed = next(s for s in progress.services if s.service_guid == dead)
        assert failed.outcomes["connect_error"] == 8 and failed.done == 8
        reason = failed.reason or ""
        assert reason.startswith("8 of 8 images did not end ok (ok 0, timeout 0, connect_error 8")
        assert "First errors: request " in reason and "cannot reach" in reason
        for image in images:  # the team sees its reason: no keys, no labels
            assert image.key not in reason and image.truth[0] not in reason
        board = service.leaderboard(session, run_id=run_id)
        assert board[-1]["service_guid"] == dead and board[-1]["outcomes"]["connect_error"] == 8


async def test_a_slow_team_does_not_hold_back_the_fast_ones(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    gate = threading.Event()
    images = make_images(12)
    dataset = add_dataset(run_engine, data_dir, images)
    slow_app, slow_seen = recognizer_app(lambda b: "x:1", gate=gate)
    slow = add_service(run_engine, [serve(slow_app)], name="slow")
    fast = [add_service(run_engine, [serve(recognizer_app(lambda b: "x:1")[0])]) for _ in range(2)]
    run_id = start_run(run_engine, settings, dataset=dataset, phase="dryrun", timeout_s=60)
    try:
        async with running_worker(run_engine, settings):
            await wait_until(
                lambda: all(statuses(run_engine, run_id)[g] == "passed" for g in fast),
                "the fast teams to finish",
            )
            # The slow team holds every request until the gate opens: nothing of it is
            # recorded, yet the fast teams are through.
            assert statuses(run_engine, run_id)[slow] == "ongoing"
            assert slow_seen.max_in_flight == 4
            gate.set()
            await wait_until(lambda: completed(run_engine, run_id), "the run to complete")
    finally:
        gate.set()
    assert statuses(run_engine, run_id)[slow] == "passed"
    assert_each_item_once(run_engine, run_id, 3, 12)


async def test_the_per_service_concurrency_bound_holds(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    images = make_images(30)
    dataset = add_dataset(run_engine, data_dir, images)
    app, seen = recognizer_app(lambda b: "x:1", delay_s=0.02)
    guid = add_service(run_engine, [serve(app)], max_concurrency=8)
    run_id = start_run(run_engine, settings, dataset=dataset, phase="evaluation", concurrency=3)
    with Session(run_engine) as session:
        member = session.scalars(select(RunService).where(RunService.run_id == run_id)).one()
        slots = session.scalars(
            select(ServiceSlot.slot).where(ServiceSlot.run_service_id == member.id)
        ).all()
        assert member.max_concurrency == 3 and sorted(slots) == [0, 1, 2]

    async with running_worker(run_engine, settings):
        await wait_until(lambda: completed(run_engine, run_id), "the run to complete")

    assert 1 < seen.max_in_flight <= 3
    assert seen.requests == 30
    assert statuses(run_engine, run_id) == {guid: "passed"}


async def test_cancel_stops_sending_and_resume_finishes_without_duplicates(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    images = make_images(40)
    dataset = add_dataset(run_engine, data_dir, images)
    app, seen = recognizer_app(lambda b: "x:1", delay_s=0.02)
    add_service(run_engine, [serve(app)])
    run_id = start_run(run_engine, settings, dataset=dataset, phase="dryrun", concurrency=2)

    async with running_worker(run_engine, settings):
        await wait_until(lambda: item_counts(run_engine, run_id).get("done", 0) >= 6, "progress")
        with Session(run_engine) as session:
            assert service.cancel_run(session, run_id=run_id).state == "cancelled"
        await wait_until(
            lambda: "leased" not in item_counts(run_engine, run_id) and seen.in_flight == 0,
            "the worker to let go of the cancelled run",
        )
        await asyncio.sleep(0.3)  # several worker ticks, in which nothing may be sent
        counts = item_counts(run_engine, run_id)
        assert counts["pending"] > 0 and "leased" not in counts
        assert seen.requests == counts["done"]  # what was sent is recorded, nothing more

        with Session(run_engine) as session:
            assert service.resume_run(session, run_id=run_id).state == "running"
        await wait_until(lambda: completed(run_engine, run_id), "the resumed run to complete")

    assert_each_item_once(run_engine, run_id, 1, 40)
    assert seen.requests == 40
    recorded = {i.request_id for i in work_items(run_engine, run_id)}
    assert recorded == set(seen.request_ids)


async def test_a_missing_image_file_fails_the_run_until_it_is_restored(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    images = make_images(6)
    dataset = add_dataset(run_engine, data_dir, images)
    add_service(run_engine, [serve(recognizer_app(lambda b: "x:1")[0])])
    lost = image_path(data_dir, images[3].digest)
    kept = lost.read_bytes()
    lost.unlink()
    run_id = start_run(run_engine, settings, dataset=dataset, phase="dryrun")

    async with running_worker(run_engine, settings):
        await wait_until(lambda: run_state(run_engine, run_id) == "failed", "the run to fail")
        with Session(run_engine) as session:
            run = session.get(Run, run_id)
            assert run is not None and str(lost) in (run.error or "")
        await wait_until(
            lambda: "leased" not in item_counts(run_engine, run_id), "leases to be released"
        )
        lost.write_bytes(kept)
        with Session(run_engine) as session:
            service.resume_run(session, run_id=run_id)
        await wait_until(lambda: completed(run_engine, run_id), "the resumed run to complete")
    assert_each_item_once(run_engine, run_id, 1, 6)


async def test_a_run_completes_once_its_last_result_is_written_not_at_the_next_survey(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    """The survey that closes lanes and completes runs ticks every `poll_s`; a lane that has
    sent and written its last item wakes it, so the run completes at once, not a tick
    later (here an hour later: the first tick opens the lane, no other comes)."""
    images = make_images(12, label=lambda i: f"dog{i % 3}")
    app, seen = recognizer_app(lambda body: "dog0:0.9")
    dataset = add_dataset(run_engine, data_dir, images)
    team = add_service(run_engine, [serve(app)], name="team")
    run_id = start_run(run_engine, settings, dataset=dataset, phase="dryrun", seed=3)

    async with running_worker(run_engine, settings, poll_s=3600.0):
        await wait_until(lambda: completed(run_engine, run_id), "the run to complete", 20.0)

    assert statuses(run_engine, run_id) == {team: "passed"}
    assert_each_item_once(run_engine, run_id, 1, 12)
    assert seen.requests == 12

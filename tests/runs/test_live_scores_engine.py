"""Live scores through the dispatch engine against real recognizers: a worker that stops
mid-run and the one that goes on, or two workers sharing a PostgreSQL database, leave
live scores equal to a full rescore of what is recorded."""

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.db import make_engine
from gateway.registry.models import Service
from gateway.runs import service
from gateway.runs.models import RunService, Worker
from tests.builders import hub_settings
from tests.runs.builders import (
    add_dataset,
    add_service,
    answers_by_image,
    item_counts,
    make_images,
    recognizer_app,
    run_state,
)
from tests.runs.conftest import running_worker, start_run, wait_until
from tests.runs.test_live_scores import assert_equals_rescore, live_figures


def mixed_answers(images: list[Any]) -> dict[str, str]:
    """Right at rank 1, right at rank 3, wrong, abstain and a format error, in turn."""
    answers = {}
    for i, image in enumerate(images):
        truth = image.truth[0]
        answers[image.key] = [
            f"{truth}:0.9;b:0.1",
            f"a:0.9;b:0.8;{truth}:0.7",
            "a:0.5",
            "",
            "no score here",
        ][i % 5]
    return answers


def board(engine: Engine, run_id: int) -> list[dict[str, Any]]:
    with Session(engine) as session:
        return service.leaderboard(session, run_id=run_id)


def run_service_ids(engine: Engine, run_id: int) -> dict[str, int]:
    """Service GUID -> run service id."""
    with Session(engine) as session:
        rows = session.execute(
            select(Service.guid, RunService.id)
            .join(Service, Service.id == RunService.service_id)
            .where(RunService.run_id == run_id)
        ).all()
    return {str(guid): int(rs) for guid, rs in rows}


def assert_board_is_the_rescore(engine: Engine, run_id: int, *, final: bool) -> None:
    """Every service's live scores equal its rescore; so do the leaderboard's rows while
    they are provisional (final rows are the stored rescore itself)."""
    ids = run_service_ids(engine, run_id)
    rows = board(engine, run_id)
    assert sorted(r["service_guid"] for r in rows) == sorted(ids)
    for row in rows:
        rs = ids[row["service_guid"]]
        assert_equals_rescore(engine, rs, live_figures(engine, rs))
        assert row["provisional"] is not final
        if final:
            assert row["images"] == row["images_total"]
        else:
            assert_equals_rescore(engine, rs, row)


async def test_a_worker_that_stops_mid_run_and_the_next_one_keep_live_scores_exact(
    run_engine: Engine, settings: Settings, data_dir: Path, serve: Any
) -> None:
    images = make_images(40)
    dataset = add_dataset(run_engine, data_dir, images)
    app, _ = recognizer_app(answers_by_image(images, mixed_answers(images)), delay_s=0.01)
    url = serve(app)
    add_service(run_engine, [url])
    add_service(run_engine, [url])
    run_id = start_run(run_engine, settings, dataset=dataset, phase="evaluation", concurrency=2)

    async with running_worker(run_engine, settings):
        await wait_until(lambda: item_counts(run_engine, run_id).get("done", 0) >= 20, "progress")
    # Stopped mid-run: what it recorded is counted, the leaderboard is provisional.
    assert item_counts(run_engine, run_id).get("pending", 0) > 0
    assert_board_is_the_rescore(run_engine, run_id, final=False)

    async with running_worker(run_engine, settings):
        await wait_until(lambda: run_state(run_engine, run_id) == "completed", "the run to end")
    assert_board_is_the_rescore(run_engine, run_id, final=True)
    for row in board(run_engine, run_id):
        assert row["images"] == 40 and row["outcomes"]["bad_format"] == 8
        assert row["top1"] == pytest.approx(8 / 40) and row["top5"] == pytest.approx(16 / 40)


@pytest.mark.postgres
async def test_two_workers_on_postgres_keep_live_scores_exact(
    postgres: Any, tmp_path: Path, serve: Any
) -> None:
    url = postgres.new()
    engine = make_engine(url)
    data_dir = tmp_path / "data"
    settings = hub_settings(
        url, data_dir, lease_s=5.0, heartbeat_s=0.5, result_flush_s=0.05, result_batch_size=20
    )
    try:
        images = make_images(150)
        dataset = add_dataset(engine, data_dir, images)
        gate = threading.Event()
        app, _ = recognizer_app(answers_by_image(images, mixed_answers(images)), gate=gate)
        recognizer = serve(app)
        add_service(engine, [recognizer])
        add_service(engine, [recognizer])
        run_id = start_run(engine, settings, dataset=dataset, phase="dryrun", concurrency=4)

        def workers() -> int:
            with Session(engine) as session:
                return int(session.scalar(select(func.count()).select_from(Worker)) or 0)

        async with (
            running_worker(engine, settings, worker_id="first") as first,
            running_worker(engine, settings, worker_id="second") as second,
        ):
            await wait_until(lambda: workers() == 2, "both workers to register")
            gate.set()
            await wait_until(lambda: run_state(engine, run_id) == "completed", "the run to end")
        assert first.recorded > 0 and second.recorded > 0
        assert first.recorded + second.recorded == 300
        assert_board_is_the_rescore(engine, run_id, final=True)
    finally:
        engine.dispose()

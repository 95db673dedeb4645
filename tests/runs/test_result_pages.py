"""Scores and result exports of runs larger than one page of `finish.done_items`: the page
is made small so that a handful of images spans several pages."""

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.registry.models import Service
from gateway.runs import finish, service
from gateway.runs.models import RunService
from tests.runs.builders import (
    add_dataset,
    add_service,
    answers_by_image,
    make_images,
    recognizer_app,
    run_state,
)
from tests.runs.conftest import running_worker, start_run, wait_until

IMAGES = 11  # pages of 3: three full ones and a last one of 2
TOO_LARGE = "x:1;" + "y" * 70_000  # over the 64 KiB a result string may have


async def test_scores_and_exports_span_every_page(
    run_engine: Engine,
    settings: Settings,
    data_dir: Path,
    serve: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    images = make_images(IMAGES, label=lambda i: f"dog{i}")
    right = {image.key for image in images[:7]}
    answers = {
        image.key: f"{image.truth[0]}:0.9;cat:0.1" if image.key in right else "cat:0.9"
        for image in images[:9]
    }
    answers.update({image.key: TOO_LARGE for image in images[9:]})
    app, _ = recognizer_app(answers_by_image(images, answers))
    broken_app, _ = recognizer_app(lambda body: "cat:1", status=503)
    dataset = add_dataset(run_engine, data_dir, images)
    team = add_service(run_engine, [serve(app)], name="team")
    broken = add_service(run_engine, [serve(broken_app)], name="broken")
    run_id = start_run(run_engine, settings, dataset=dataset, phase="evaluation", max_attempts=1)
    async with running_worker(run_engine, settings):
        await wait_until(lambda: run_state(run_engine, run_id) == "completed", "the run")

    monkeypatch.setattr(finish, "PAGE", 3)
    with Session(run_engine) as session:
        members = {
            str(guid): member
            for guid, member in session.execute(
                select(Service.guid, RunService)
                .join(Service, Service.id == RunService.service_id)
                .where(RunService.run_id == run_id)
            )
        }
        scores = finish.service_scores(session.connection(), run_service_id=members[team].id)
        assert scores["images"] == IMAGES
        assert scores["outcomes"]["ok"] == 9 and scores["outcomes"]["too_large"] == 2
        assert scores["top1"] == pytest.approx(7 / IMAGES)
        # The worker scored every result as it recorded it: the paged pass agrees.
        live = members[team].scores
        assert live is not None
        assert {**scores, "images_per_s": None} == {**live, "images_per_s": None}

        failing = finish.service_scores(session.connection(), run_service_id=members[broken].id)
        assert failing["images"] == IMAGES and failing["outcomes"]["http_error"] == IMAGES

        rows = list(service.iter_results(session, run_id=run_id, service_guid=team))
        assert sorted(row.key for row in rows) == [image.key for image in images]
        by_key = {row.key: row for row in rows}
        assert sorted(k for k, row in by_key.items() if row.true_rank == 1) == sorted(right)
        assert {by_key[image.key].outcome for image in images[9:]} == {"too_large"}

        broken_rows = list(service.iter_results(session, run_id=run_id, service_guid=broken))
        assert len(broken_rows) == IMAGES
        assert {row.outcome for row in broken_rows} == {"http_error"}

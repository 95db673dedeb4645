"""The public/private split of a phase (SPEC §12): while it is open a team sees scores of
the public part only, never a private image's outcome; the final ranking is on the
private part and equals a full rescore of it."""

import json
from pathlib import Path

import httpx
from sqlalchemy import select

from gateway.datasets.models import DatasetImage
from gateway.db import make_engine
from gateway.runs.live_scores import read_part_rows
from gateway.runs.models import RunService
from gateway.scoring.metrics import ServiceScorer
from gateway.scoring.split import Split
from tests.builders import admin_headers, bearer, register_team
from tests.challenges.builders import API, board, create_challenge, phase_body, submit
from tests.runs.api_builders import CAT_DOG, recognizers, seed_dataset, wait_for
from tests.servers import LiveServer

SEED = 7
KINDS = ("cat", "dog", "bird")
LABELS = {f"img-{n:02d}": KINDS[n % 3] for n in range(30)}


def parts(database_url: str, dataset_id: int) -> tuple[set[str], set[str]]:
    """The keys of the public and of the private images, by the split's own rule."""
    split = Split(SEED, 0.5)
    engine = make_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(DatasetImage.id, DatasetImage.key).where(DatasetImage.dataset_id == dataset_id)
        ).all()
    engine.dispose()
    public = {key for image_id, key in rows if split.is_public(image_id)}
    return public, {key for _, key in rows} - public


def rescore(rows: list[dict[str, object]], keys: set[str]) -> dict[str, object]:
    """A full rescore of the exported results of `keys` (the organizer's export)."""
    scorer = ServiceScorer()
    for row in rows:
        if row["key"] in keys:
            tags = [(t["tag"], t["score"]) for t in row["tags"]]  # type: ignore[attr-defined]
            scorer.add(
                outcome=str(row["outcome"]),
                tags=tags,
                truth=list(row["labels"]),  # type: ignore[call-overload]
                latency_ms=row["latency_ms"],  # type: ignore[arg-type]
            )
    return scorer.result(elapsed_s=None)


def test_teams_see_the_public_part_and_the_final_ranking_is_the_private_part(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS, name="pets")
    public, private = parts(database_url, dataset_id)
    assert public and private
    with (
        recognizers(CAT_DOG, "bird:0.9") as (ra, rb),
        httpx.Client(base_url=hub.url, timeout=60) as c,
    ):
        alpha = register_team(c, [ra.url], name="alpha")
        beta = register_team(c, [rb.url], name="beta")
        create_challenge(
            c,
            "pets-cup",
            phase_body(public_fraction=0.5, seed=SEED, dry_run=True),
            public=True,
        )
        runs = []
        for team in (alpha, beta):
            made = submit(c, team.api_key, team.service_guid)
            assert made.status_code == 201, made.text
            runs.append(made.json()["run_id"])
        for run_id in runs:
            wait_for(c, run_id, {"completed"})
        export = [
            json.loads(line)
            for run_id in runs
            for line in c.get(
                f"/api/v1/runs/{run_id}/results", headers=admin_headers()
            ).text.splitlines()
        ]
        by_service = {
            team.service_guid: [r for r in export if r["service_guid"] == team.service_guid]
            for team in (alpha, beta)
        }

        # The live scores kept per part while the runs went agree with a rescore of it.
        engine = make_engine(database_url)
        with engine.connect() as conn:
            for run_id, team in zip(runs, (alpha, beta), strict=True):
                run_service_ids = [
                    row.id
                    for row in conn.execute(
                        select(RunService.id).where(RunService.run_id == run_id)
                    )
                ]
                for part, keys in (("public", public), ("private", private)):
                    (kept,) = read_part_rows(
                        conn, run_service_ids=run_service_ids, part=part
                    ).values()
                    expected = rescore(by_service[team.service_guid], keys)
                    assert kept.tally.result()["top5"] == expected["top5"], part
                    assert kept.images_total == len(keys)
        engine.dispose()

        # While open: the public part, for the team and in its submissions.
        seen = board(c, alpha.api_key).json()
        assert seen["part"] == "public" and seen["final"] is False
        for row in seen["rows"]:
            expected = rescore(by_service[row["service_guid"]], public)
            assert row["scores"]["top5"] == expected["top5"]
            assert row["scores"]["images"] == len(public)
        mine = c.get(f"{API}/pets-cup/phases/final/submissions", headers=bearer(alpha.api_key))
        assert [s["scores"]["part"] for s in mine.json()] == ["public"]
        # The run's own views never show a private image or a figure over all images.
        alpha_run = runs[0]
        results = c.get(
            f"/api/v1/runs/{alpha_run}/results",
            params={"service": alpha.service_guid},
            headers=bearer(alpha.api_key),
        )
        assert results.status_code == 200
        assert {json.loads(line)["key"] for line in results.text.splitlines()} == public
        for view in (
            f"/api/v1/runs/{alpha_run}/leaderboard",
            f"/api/v1/runs/{alpha_run}/failures",
            f"/api/v1/runs/{alpha_run}/timeline",
            f"/api/v1/runs/{alpha_run}/services/{alpha.service_guid}/classes",
        ):
            assert c.get(view, headers=bearer(alpha.api_key)).status_code == 403, view
        assert board(c, "").status_code == 403  # public challenge, nothing published

        # Closed: the final ranking on the private part, equal to a full rescore of it.
        closed = c.post(f"{API}/pets-cup/phases/final/close", headers=admin_headers())
        assert closed.json()["state"] == "closed", closed.text
        final = board(c, None).json()
        assert final["final"] is True and final["part"] == "private"
        for row in final["rows"]:
            expected = rescore(by_service[row["service_guid"]], private)
            assert row["scores"]["top5"] == expected["top5"]
            assert row["scores"]["top1"] == expected["top1"]
            assert row["scores"]["images"] == len(private)
        # cat and dog (alpha) against bird alone (beta): alpha ranks first.
        assert [(r["provider_guid"], r["rank"]) for r in final["rows"]] == [
            (alpha.provider_guid, 1),
            (beta.provider_guid, 2),
        ]
        # Before publication a team still sees the public part only.
        assert board(c, beta.api_key).json()["part"] == "public"

        assert c.post(f"{API}/pets-cup/phases/final/publish", headers=admin_headers()).is_success
        anonymous = board(c, "").json()
        assert anonymous["final"] is True
        assert [r["provider_name"] for r in anonymous["rows"]] == [
            r["provider_name"] for r in final["rows"]
        ]
        assert all(r["provider_guid"] is None for r in anonymous["rows"])
        assert board(c, beta.api_key).json()["part"] == "private"


def test_a_teams_view_of_a_split_run_counts_the_public_part_until_publication(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    """`GET /runs/{id}` of a submission: a team's outcome counts and totals are of the
    public images only (live and once scored) until the final ranking is published; the
    organizer's of every image."""
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS, name="pets")
    public, _ = parts(database_url, dataset_id)
    with (
        recognizers(CAT_DOG) as (fast,),
        recognizers(CAT_DOG, delay_ms=60_000) as (slow,),
        httpx.Client(base_url=hub.url, timeout=60) as c,
    ):
        alpha = register_team(c, [fast.url], name="alpha")
        beta = register_team(c, [slow.url], name="beta")
        create_challenge(c, "pets-cup", phase_body(public_fraction=0.5, seed=SEED))
        done = submit(c, alpha.api_key, alpha.service_guid).json()
        going = submit(c, beta.api_key, beta.service_guid).json()
        wait_for(c, done["run_id"], {"completed"})
        wait_for(c, going["run_id"], {"running"})

        def seen(key: str | None, run_id: int) -> tuple[str | None, int, int]:
            headers = bearer(key) if key else admin_headers()
            body = c.get(f"/api/v1/runs/{run_id}", headers=headers).json()
            (row,) = body["services"]
            return body["part"], row["total"], sum(row["outcomes"].values())

        assert seen(alpha.api_key, done["run_id"]) == ("public", len(public), len(public))
        assert seen(None, done["run_id"]) == (None, len(LABELS), len(LABELS))
        part, total, answered = seen(beta.api_key, going["run_id"])
        assert (part, total) == ("public", len(public)) and answered <= len(public)

        assert c.post(f"{API}/pets-cup/phases/final/close", headers=admin_headers()).is_success
        wait_for(c, going["run_id"], {"completed"})
        # Its runs stopped: publishing closes the phase if the worker has not yet.
        published = c.post(f"{API}/pets-cup/phases/final/publish", headers=admin_headers())
        assert published.is_success, published.text
        assert seen(alpha.api_key, done["run_id"]) == (None, len(LABELS), len(LABELS))
        assert seen(beta.api_key, going["run_id"]) == (None, len(LABELS), len(LABELS))

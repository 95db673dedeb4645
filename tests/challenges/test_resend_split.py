"""Re-sending a split phase run's images (README, "Re-sending a team's images"; SPEC §12):
the live scores of each part (`live_score_parts`) are taken back and counted again like
the whole run's, so a team's public score while the phase is open, and each part's
final score, equal a full rescore of that part."""

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.app import create_app
from gateway.db import make_engine
from gateway.runs.finish import part_scores, run_split
from gateway.runs.live_scores import read_part_rows
from gateway.runs.models import RunService
from tests.builders import admin_headers, hub_settings, register_team
from tests.challenges.builders import create_challenge, phase_body, submit
from tests.dialout.support import dialout_recognizer
from tests.runs.api_builders import CAT_DOG, poll_until, reach_deadline, seed_dataset, wait_for
from tests.runs.builders import recognizer_app
from tests.servers import LiveServer, live_server

SEED = 7
KINDS = ("cat", "dog", "bird")
LABELS = {f"img-{n:02d}": KINDS[n % 3] for n in range(30)}
FIGURES = ("images", "top1", "top5", "outcomes")


@pytest.fixture
def quick_hub(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A hub that sends to a dial-out service at once (no grace) and never pauses one (no
    breaker): a recognizer not connected costs its team `connect_error` results."""
    settings = hub_settings(
        database_url, tmp_path / "data", dialout_grace_s=0.0, breaker_failures=0
    )
    with live_server(create_app(settings)) as server:
        yield server


def split_phase(c: httpx.Client) -> None:
    create_challenge(c, "pets-cup", phase_body(public_fraction=0.5, seed=SEED), public=True)


def outcomes_of(c: httpx.Client, run_id: int) -> dict[str, int]:
    body = c.get(f"/api/v1/runs/{run_id}", headers=admin_headers()).json()
    return dict(body["services"][0]["outcomes"])


def resend(c: httpx.Client, run_id: int, service_guid: str, outcome: str) -> dict[str, Any]:
    r = c.post(
        f"/api/v1/runs/{run_id}/resend",
        json={"service_guid": service_guid, "outcomes": [outcome]},
        headers=admin_headers(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["images"] == len(LABELS)
    return dict(r.json())


def parts_now(database_url: str, run_id: int) -> dict[str, Any]:
    """Each part's live scores, its full rescore, and the stored final part scores."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            member = conn.execute(
                select(RunService.id).where(RunService.run_id == run_id)
            ).scalar_one()
            split = run_split(conn, run_service_id=member)
            assert split is not None
            rescored = part_scores(conn, run_service_id=member, split=split)
            live = {
                part: read_part_rows(conn, run_service_ids=[member], part=part)[
                    member
                ].tally.result()
                for part in ("public", "private")
            }
            stored = conn.execute(
                select(RunService.part_scores).where(RunService.id == member)
            ).scalar_one()
    finally:
        engine.dispose()
    return {"rescored": rescored, "live": live, "stored": stored}


def assert_live_is_rescore(found: dict[str, Any]) -> None:
    for part in ("public", "private"):
        live, rescored = found["live"][part], found["rescored"][part]
        assert {k: live[k] for k in FIGURES} == {k: rescored[k] for k in FIGURES}, part


def test_resent_connect_errors_count_in_each_part(
    quick_hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed_dataset(database_url, tmp_path / "data", LABELS, name="pets")
    with httpx.Client(base_url=quick_hub.url, timeout=60) as c:
        team = register_team(c, [], max_concurrency=2, name="late")  # dial-out, not connected
        split_phase(c)
        made = submit(c, team.api_key, team.service_guid)
        assert made.status_code == 201, made.text
        run_id = made.json()["run_id"]
        wait_for(c, run_id, {"completed"}, timeout=60)
        assert outcomes_of(c, run_id)["connect_error"] == len(LABELS)
        failed = parts_now(database_url, run_id)
        assert_live_is_rescore(failed)
        assert failed["live"]["public"]["outcomes"]["connect_error"] > 0
        assert failed["live"]["private"]["outcomes"]["connect_error"] > 0
        with dialout_recognizer(quick_hub.url, team, tmp_path, "--answer", CAT_DOG):
            resend(c, run_id, team.service_guid, "connect_error")
            wait_for(c, run_id, {"completed"}, timeout=60)
        assert outcomes_of(c, run_id)["ok"] == len(LABELS)
    found = parts_now(database_url, run_id)
    assert_live_is_rescore(found)
    for part in ("public", "private"):
        assert found["live"][part]["outcomes"]["connect_error"] == 0
        assert found["live"][part]["outcomes"]["ok"] == found["live"][part]["images"] > 0
        stored = found["stored"][part]
        assert {k: stored[k] for k in FIGURES} == {k: found["rescored"][part][k] for k in FIGURES}


def test_missed_at_the_close_count_in_each_part_and_resent_are_taken_back(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    """Missed when the phase's run reached its deadline (recorded unsent), then re-sent:
    the parts count them, then their answers; the reopened service drops its final part
    scores until it is final again."""
    seed_dataset(database_url, tmp_path / "data", LABELS, name="pets")
    gate = threading.Event()  # nothing is answered before the deadline
    app, _ = recognizer_app(lambda body: CAT_DOG, gate=gate)
    try:
        with live_server(app) as rec, httpx.Client(base_url=hub.url, timeout=60) as c:
            team = register_team(c, [rec.url], name="slow")
            split_phase(c)
            made = submit(c, team.api_key, team.service_guid)
            assert made.status_code == 201, made.text
            run_id = made.json()["run_id"]
            poll_until(
                lambda: (
                    c.get(f"/api/v1/runs/{run_id}", headers=admin_headers()).json()["state"]
                    == "running"
                ),
                "sending",
            )
            reach_deadline(database_url, run_id)
            wait_for(c, run_id, {"completed"})
            assert outcomes_of(c, run_id)["missed"] == len(LABELS)
            missed = parts_now(database_url, run_id)
            assert_live_is_rescore(missed)
            assert missed["stored"] is not None
            assert missed["live"]["private"]["outcomes"]["missed"] > 0

            resend(c, run_id, team.service_guid, "missed")
            reopened = parts_now(database_url, run_id)
            assert reopened["stored"] is None  # not final: no final part scores
            assert_live_is_rescore(reopened)
            gate.set()
            wait_for(c, run_id, {"completed"})
            assert outcomes_of(c, run_id)["ok"] == len(LABELS)
    finally:
        gate.set()
    found = parts_now(database_url, run_id)
    assert_live_is_rescore(found)
    for part in ("public", "private"):
        assert found["live"][part]["outcomes"]["missed"] == 0
        stored = found["stored"][part]
        assert {k: stored[k] for k in FIGURES} == {k: found["rescored"][part][k] for k in FIGURES}

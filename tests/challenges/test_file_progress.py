"""A file still scoring shows how far it is (issue 19 point 4), and a phase that closes
while a file accepted before `closes_at` is still scoring waits for it: the frozen final
ranking holds the file's scores (SPEC §12, §13)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy.orm import Session

from gateway.app import create_app
from gateway.challenges.models import ChallengePhase
from gateway.db import make_engine, utcnow
from gateway.offline.answers import Catalogue
from gateway.offline.isolated import read_answers_isolated
from tests.builders import admin_headers, bearer, descriptors_file, hub_settings, register_team
from tests.challenges.builders import API, board, create_challenge, phase_body
from tests.challenges.offline_builders import download, seed, upload
from tests.runs.api_builders import poll_until
from tests.servers import LiveServer, live_server

PETS = {"img-a": ["cat"], "img-b": ["cat"], "img-c": ["dog"], "img-d": ["bird"]}


@pytest.fixture
def slow_hub(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A hub that answers 202 at once and holds each file five seconds before scoring."""
    settings = hub_settings(
        database_url, tmp_path / "data", submission_wait_s=0.0, submission_scoring_delay_s=5.0
    )
    with live_server(create_app(settings)) as server:
        yield server


def _close_now(database_url: str) -> None:
    """Bring the phase's close forward to now in the database, instead of waiting."""
    engine = make_engine(database_url)
    with Session(engine) as session:
        for phase in session.query(ChallengePhase):
            phase.closes_at = utcnow()
        session.commit()
    engine.dispose()


def test_a_file_scoring_shows_its_progress_and_the_closing_phase_waits_for_it(
    slow_hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed(database_url, tmp_path / "data", PETS)
    with httpx.Client(base_url=slow_hub.url, timeout=60) as c:
        alpha = register_team(c, [], name="alpha")
        create_challenge(c, "pets-cup", phase_body(kind="offline", metric="top1"))
        download(c, alpha.api_key)
        r = upload(c, alpha.api_key, b"cat\ncat\ndog\ncat\n", "ilsvrc")  # 3 of 4 right
        assert r.status_code == 202, r.text
        url = f"{API}/pets-cup/phases/final/submissions/{r.json()['id']}"
        seen: dict[str, Any] = {}

        def progress_shown() -> bool:
            seen.update(c.get(url, headers=bearer(alpha.api_key)).json())
            return seen.get("progress") is not None

        poll_until(progress_shown, "the file's progress to show")
        assert seen["state"] == "scoring"
        assert seen["progress"] == {"stage": "score", "done": 0, "total": 4}

        _close_now(database_url)  # closes while the file accepted before is scoring
        phase = c.get(f"{API}/pets-cup/phases/final", headers=admin_headers()).json()
        assert phase["state"] != "closed"
        poll_until(
            lambda: (
                c.get(f"{API}/pets-cup/phases/final", headers=admin_headers()).json()["state"]
                == "closed"
            ),
            "the phase to close once the file is scored",
        )
        done = c.get(url, headers=bearer(alpha.api_key)).json()
        assert done["state"] == "scored" and done["progress"] is None
        final = board(c, None).json()
        assert final["final"] is True
        assert [(row["provider_name"], row["rank"]) for row in final["rows"]] == [("alpha", 1)]
        assert final["rows"][0]["scores"]["top1"] == pytest.approx(0.75)


def test_a_descriptor_file_searched_in_its_child_reports_its_progress(tmp_path: Path) -> None:
    queries = [f"q{i}" for i in range(5)]
    path = tmp_path / "descriptors.npz"
    path.write_bytes(
        descriptors_file(
            {
                "query_ids": np.array(queries, dtype="S"),
                "query": np.arange(10, dtype=np.float32).reshape(5, 2),
                "reference_ids": np.array(["r1", "r2"], dtype="S"),
                "reference": np.array([[0.0, 0.0], [9.0, 9.0]], dtype=np.float32),
            }
        ).getvalue()
    )
    reports: list[tuple[str, int, int]] = []
    answers = read_answers_isolated(
        str(path),
        format="isc-descriptors",
        catalogue=Catalogue(image_ids=queries, reference_ids=["r1", "r2"]),
        k=1,
        max_bytes=1 << 20,
        timeout_s=60,
        progress=lambda stage, done, total: reports.append((stage, done, total)),
    )
    assert reports and reports[-1] == ("search", 5, 5)
    assert all(stage == "search" and 0 <= done <= total == 5 for stage, done, total in reports)
    assert answers.has_scores

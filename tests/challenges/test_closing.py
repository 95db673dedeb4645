"""A phase closes by itself at `closes_at` (SPEC §12): a submission still running stops as
at a deadline (`missed`), the final ranking is frozen; a closed phase's dataset, split
and metric cannot change."""

from pathlib import Path

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gateway.challenges.models import ChallengePhase
from gateway.db import make_engine, utcnow
from gateway.runs.models import Run
from tests.builders import admin_headers, bearer, register_team
from tests.challenges.builders import API, board, create_challenge, phase_body, submit
from tests.runs.api_builders import CAT_DOG, LABELS, poll_until, recognizers, seed_dataset, wait_for
from tests.servers import LiveServer


def reach_close(database_url: str, run_ids: list[int]) -> None:
    """Bring the phase's close (and so its runs' deadline) forward to now in the database,
    instead of waiting for it."""
    engine = make_engine(database_url)
    with Session(engine) as session:
        now = utcnow()
        for phase in session.query(ChallengePhase):
            phase.closes_at = now
        for run_id in run_ids:
            run = session.get(Run, run_id)
            assert run is not None and run.deadline is not None
            run.deadline = now
        session.commit()
    engine.dispose()


def test_a_phase_closes_by_itself_with_a_submission_running(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed_dataset(database_url, tmp_path / "data", LABELS, name="pets")
    seed_dataset(database_url, tmp_path / "data", LABELS, name="other")
    with (
        recognizers(CAT_DOG) as (fast,),
        recognizers(CAT_DOG, delay_ms=60_000) as (slow,),
        httpx.Client(base_url=hub.url, timeout=60) as c,
    ):
        alpha = register_team(c, [fast.url], name="alpha")
        beta = register_team(c, [slow.url], name="beta")
        create_challenge(c, "pets-cup", phase_body(metric="top1"))
        done = submit(c, alpha.api_key, alpha.service_guid).json()
        going = submit(c, beta.api_key, beta.service_guid).json()
        assert going["run_id"] != done["run_id"]
        wait_for(c, done["run_id"], {"completed"})
        wait_for(c, going["run_id"], {"running"})
        assert board(c, None).json()["final"] is False

        reach_close(database_url, [done["run_id"], going["run_id"]])
        # Nobody closes it: reading the phase after its runs stopped finds it closed.
        poll_until(
            lambda: (
                c.get(f"{API}/pets-cup/phases/final", headers=admin_headers()).json()["state"]
                == "closed"
            ),
            "the phase to close by itself",
        )
        stopped = c.get(f"/api/v1/runs/{going['run_id']}", headers=admin_headers()).json()
        assert stopped["state"] == "completed" and stopped["stopped_at_deadline"] is True
        assert stopped["services"][0]["outcomes"]["missed"] == len(LABELS)
        final = board(c, None).json()
        assert final["final"] is True
        assert [(r["provider_name"], r["rank"]) for r in final["rows"]] == [
            ("alpha", 1),
            ("beta", 2),
        ]
        assert final["rows"][1]["scores"]["top1"] == 0.0

        late = submit(c, alpha.api_key, alpha.service_guid)
        assert late.status_code == 409 and late.json()["code"] == "phase_closed"
        shown = c.get(f"{API}/pets-cup/phases/final", headers=admin_headers()).json()
        as_is = phase_body(metric="top1", opens_at=shown["opens_at"], closes_at=shown["closes_at"])
        for field, value in (("dataset", "other"), ("metric", "top5"), ("public_fraction", 0.5)):
            changed = c.patch(
                f"{API}/pets-cup",
                json={"phases": [{**as_is, field: value}]},
                headers=admin_headers(),
            )
            assert changed.status_code == 409, changed.text
            assert changed.json()["detail"].startswith(f"phase final: {field}:")
        reopened = c.patch(
            f"{API}/pets-cup", json={"phases": [phase_body(metric="top1")]}, headers=admin_headers()
        )
        assert reopened.status_code == 409 and reopened.json()["code"] == "phase_closed"
        # The frozen ranking stays as it was whatever the counting rule says later.
        relaxed = c.patch(
            f"{API}/pets-cup",
            json={"phases": [{**as_is, "counts": "last"}]},
            headers=admin_headers(),
        )
        assert relaxed.status_code == 200, relaxed.text
        assert board(c, None).json() == final
        # Teams see it once it is published.
        assert board(c, alpha.api_key).json()["final"] is False
        assert c.post(f"{API}/pets-cup/phases/final/publish", headers=admin_headers()).is_success
        assert board(c, alpha.api_key).json()["rows"] == final["rows"]
        assert (
            c.get(f"{API}/pets-cup", headers=bearer(beta.api_key)).json()["phases"][0]["state"]
            == "published"
        )


def closed_phase(engine: Engine) -> ChallengePhase | None:
    """The phase as the database holds it once closed (None while open), read without the
    API: a read of the phase through the API would close it itself."""
    with Session(engine) as session:
        phase = session.query(ChallengePhase).one()
        return phase if phase.closed_at is not None else None


def test_a_phase_nobody_reads_closes_with_its_final_ranking(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    """The worker's closer closes a due phase once its runs stopped: no request about the
    challenge is made between the close and the check."""
    seed_dataset(database_url, tmp_path / "data", LABELS, name="pets")
    with (
        recognizers(CAT_DOG) as (fast,),
        recognizers(CAT_DOG, delay_ms=60_000) as (slow,),
        httpx.Client(base_url=hub.url, timeout=60) as c,
    ):
        alpha = register_team(c, [fast.url], name="alpha")
        beta = register_team(c, [slow.url], name="beta")
        create_challenge(c, "pets-cup", phase_body(metric="top1"))
        done = submit(c, alpha.api_key, alpha.service_guid).json()
        going = submit(c, beta.api_key, beta.service_guid).json()
        wait_for(c, done["run_id"], {"completed"})
        wait_for(c, going["run_id"], {"running"})

        reach_close(database_url, [done["run_id"], going["run_id"]])
        engine = make_engine(database_url)
        try:
            phase = poll_until(
                lambda: closed_phase(engine), "the worker to close the phase nobody reads"
            )
        finally:
            engine.dispose()
        assert phase.published_at is None
        assert [(r["provider_name"], r["rank"]) for r in phase.final_ranking or []] == [
            ("alpha", 1),
            ("beta", 2),
        ]
        stopped = c.get(f"/api/v1/runs/{going['run_id']}", headers=admin_headers()).json()
        assert stopped["stopped_at_deadline"] is True
        # The API shows the same frozen ranking.
        final = board(c, None).json()
        assert final["final"] is True
        assert [r["submission_id"] for r in final["rows"]] == [
            r["submission_id"] for r in phase.final_ranking or []
        ]

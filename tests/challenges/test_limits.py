"""Submission limits of a phase (SPEC §12): per day, per week and in total, checked in the
transaction that creates the run, so parallel requests at the limit pass it exactly."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select, update

from gateway.challenges.models import Submission
from gateway.db import make_engine
from tests.builders import register_team
from tests.challenges.builders import create_challenge, phase_body, submit
from tests.runs.api_builders import CAT_DOG, LABELS, recognizers, seed_dataset
from tests.servers import LiveServer


def backdate(database_url: str, submission_id: int, days: float) -> None:
    """Move a submission's time back, as if made `days` ago."""
    engine = make_engine(database_url)
    with engine.begin() as conn:
        made = conn.execute(
            select(Submission.created_at).where(Submission.id == submission_id)
        ).scalar_one()
        conn.execute(
            update(Submission)
            .where(Submission.id == submission_id)
            .values(created_at=made - timedelta(days=days))
        )
    engine.dispose()


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_twenty_parallel_submits_at_the_limit_accept_exactly_the_limit(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed_dataset(database_url, tmp_path / "data", LABELS, name="pets")
    with recognizers(CAT_DOG) as (ra,), httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [ra.url], name="alpha")
        create_challenge(c, "pets-cup", phase_body(submission_limit={"total": 3}))
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(
                pool.map(lambda _: submit(c, alpha.api_key, alpha.service_guid), range(20))
            )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201] * 3 + [429] * 17, [a.text for a in answers if a.status_code >= 500]
        refused = next(a for a in answers if a.status_code == 429).json()
        assert refused["code"] == "quota_exceeded"
        assert refused["next_allowed_at"] is None  # the total is used up: never again
        assert "total 3" in refused["detail"]
        listed = c.get(
            "/api/v1/challenges/pets-cup/phases/final/submissions",
            headers={"Authorization": f"Bearer {alpha.api_key}"},
        ).json()
        assert len(listed) == 3


def test_per_day_and_per_week_limits_say_when_the_next_is_allowed(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed_dataset(database_url, tmp_path / "data", LABELS, name="pets")
    with recognizers(CAT_DOG) as (ra,), httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [ra.url], name="alpha")
        create_challenge(
            c,
            "pets-cup",
            phase_body(
                submission_limit={"per_day": 1, "per_week": 2},
                closes_at=(datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ),
        )
        first = submit(c, alpha.api_key, alpha.service_guid)
        assert first.status_code == 201, first.text
        second = submit(c, alpha.api_key, alpha.service_guid)
        assert second.status_code == 429
        assert second.headers["Retry-After"]
        made_at = parse(first.json()["created_at"])
        next_at = parse(second.json()["next_allowed_at"])
        assert next_at - made_at <= timedelta(days=1, seconds=1)
        assert next_at - made_at >= timedelta(hours=23, minutes=59)

        # A day later the day's limit allows one more; the week's (2) then is used up.
        backdate(database_url, first.json()["id"], days=1.01)
        again = submit(c, alpha.api_key, alpha.service_guid)
        assert again.status_code == 201, again.text
        backdate(database_url, again.json()["id"], days=1.01)
        weekly = submit(c, alpha.api_key, alpha.service_guid)
        assert weekly.status_code == 429
        # The first leaves the 7 days first: at its time + 7 days.
        week_next = parse(weekly.json()["next_allowed_at"])
        assert abs(week_next - (made_at - timedelta(days=1.01) + timedelta(days=7))) < timedelta(
            seconds=2
        )
        # The organizer's submissions count too, and the organizer is never refused.
        by_organizer = submit(c, None, alpha.service_guid)
        assert by_organizer.status_code == 201, by_organizer.text
        assert by_organizer.json()["by_organizer"] is True


def test_outside_the_window_is_409_with_the_window(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed_dataset(database_url, tmp_path / "data", LABELS, name="pets")
    now = datetime.now(UTC)
    with recognizers(CAT_DOG) as (ra,), httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [ra.url], name="alpha")
        create_challenge(
            c,
            "pets-cup",
            phase_body(
                "later",
                opens_at=(now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                closes_at=(now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ),
        )
        early = submit(c, alpha.api_key, alpha.service_guid, phase="later")
        assert early.status_code == 409
        body = early.json()
        assert body["code"] == "phase_not_open"
        assert body["opens_at"].endswith("Z") and body["closes_at"].endswith("Z")
        assert body["opens_at"] in body["detail"]

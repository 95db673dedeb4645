"""A phase opening and closing is told (issue 20): a real hub on SQLite and PostgreSQL
posts `phase.opened` and `phase.closed`, signed, once each, to the teams enrolled in the
challenge (its list, or every team) and to the organizer; a team not enrolled hears
nothing of it."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.builders import register_team
from tests.challenges.builders import create_challenge, iso, phase_body
from tests.notify.conftest import ORGANIZER_SECRET, set_webhook
from tests.notify.receiver import Receiver
from tests.runs.api_builders import poll_until, seed_dataset
from tests.servers import LiveServer

WAIT_S = 60.0


def told(receiver: Receiver, path: str) -> list[tuple[str, str, str]]:
    return [
        (p.event["event"], p.event["challenge"], p.event["phase"]) for p in receiver.answered(path)
    ]


def test_a_phase_that_opens_and_closes_is_told_once_each_signed(
    notifying_hub: LiveServer, receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    seed_dataset(database_url, tmp_path / "data", {"img-0": "cat"}, name="pets")
    with httpx.Client(base_url=notifying_hub.url) as c:
        alpha = register_team(c, ["http://127.0.0.1:9/"], name="alpha")
        beta = register_team(c, ["http://127.0.0.1:9/"], name="beta")
        alpha_secret = set_webhook(c, alpha.provider_guid, alpha.api_key, f"{receiver.url}/alpha")
        beta_secret = set_webhook(c, beta.provider_guid, beta.api_key, f"{receiver.url}/beta")
        # Every team's challenge, open since an hour before any notifier saw it.
        create_challenge(c, "open-cup", phase_body("league"))
        # Alpha's alone, with a phase that opens and closes during the test.
        opens = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        sprint = phase_body(
            "sprint", opens_at=iso(opens), closes_at=iso(opens + timedelta(seconds=2))
        )
        create_challenge(c, "sprint-cup", sprint, providers=[alpha.provider_guid])
        poll_until(
            lambda: ("phase.closed", "sprint-cup", "sprint") in told(receiver, "/alpha"),
            "the sprint's close told",
            WAIT_S,
        )
        # A later change, told by a later tick: by then a repeat would have been posted.
        create_challenge(c, "last-cup", phase_body("league"))
        poll_until(lambda: len(told(receiver, "/beta")) == 2, "the last cup told", WAIT_S)

    expected = [
        ("phase.opened", "open-cup", "league"),
        ("phase.opened", "sprint-cup", "sprint"),
        ("phase.closed", "sprint-cup", "sprint"),
        ("phase.opened", "last-cup", "league"),
    ]
    assert told(receiver, "/alpha") == expected
    assert told(receiver, "/beta") == [expected[0], expected[3]]  # not enrolled in the sprint
    assert told(receiver, "/organizer") == expected
    for path, secret in (
        ("/alpha", alpha_secret),
        ("/beta", beta_secret),
        ("/organizer", ORGANIZER_SECRET),
    ):
        for post in receiver.answered(path):
            assert post.signature_problem(secret) is None
            assert post.headers["x-recog-event"] == post.event["event"]
    opened, closed = receiver.answered("/alpha")[1].event, receiver.answered("/alpha")[2].event
    assert opened["at"] == opened["opens_at"] == iso(opens)
    assert closed["closes_at"] == iso(opens + timedelta(seconds=2))
    assert datetime.fromisoformat(closed["at"]) >= opens + timedelta(seconds=2)
    assert opened["id"] != closed["id"]

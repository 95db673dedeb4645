"""Teams are told (issue 20): a real hub on SQLite and PostgreSQL posts signed events to
a real receiver when a run starts and ends and when a team's service goes down and comes
back; a failing receiver gets the event after a retry, a hanging one slows no run, and a
webhook at a private address is refused when it is set."""

import re
from pathlib import Path

import httpx
import pytest

from tests.builders import admin_headers, bearer, register_team
from tests.notify.conftest import ORGANIZER_SECRET, set_webhook
from tests.notify.receiver import Receiver
from tests.notify.recognizer import Recognizer
from tests.runs.api_builders import poll_until, seed_dataset, start_run, wait_for
from tests.servers import LiveServer, live_server

WAIT_S = 60.0


def labels(count: int) -> dict[str, str]:
    return {f"img-{i:03d}": "cat" for i in range(count)}


def outcomes(client: httpx.Client, run_id: int) -> dict[str, int]:
    run = client.get(f"/api/v1/runs/{run_id}", headers=admin_headers()).json()
    (svc,) = run["services"]
    return {outcome: n for outcome, n in svc["outcomes"].items() if n}


def test_a_service_down_and_back_during_a_run_is_told_signed(
    notifying_hub: LiveServer, receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    recognizer = Recognizer(fail_after=6)
    with live_server(recognizer.app()) as rec, httpx.Client(base_url=notifying_hub.url) as c:
        team = register_team(c, [rec.url], max_concurrency=1)
        secret = set_webhook(c, team.provider_guid, team.api_key, f"{receiver.url}/team")
        dataset = seed_dataset(database_url, tmp_path / "data", labels(20))
        run = start_run(c, dataset, "dryrun", max_attempts=1)

        poll_until(lambda: "service.down" in receiver.kinds("/team"), "the down event", WAIT_S)
        recognizer.up.set()  # back: the next probe answers
        wait_for(c, run["id"], {"completed"}, WAIT_S)
        poll_until(lambda: "run.ended" in receiver.kinds("/team"), "the end event", WAIT_S)
        assert outcomes(c, run["id"]) == {"ok": 20}  # the items held while down were re-sent

        timeline = c.get(f"/api/v1/runs/{run['id']}/timeline", headers=admin_headers()).json()

    team_posts = receiver.answered("/team")
    assert [p.event["event"] for p in team_posts] == [
        "run.started",
        "service.down",
        "service.up",
        "run.ended",
    ]
    for post in team_posts:
        assert post.signature_problem(secret) is None
        assert post.signature_problem("another secret") == "signature does not match"
        assert post.headers["x-recog-event"] == post.event["event"]
        assert post.event["run"]["id"] == run["id"]
        (named,) = post.event["services"]
        assert named["service_guid"] == team.service_guid
    down, up = team_posts[1].event, team_posts[2].event
    assert down["reason"].startswith("down: 3 requests in a row got no answer")
    assert down["at"] <= up["at"]
    # The organizer is told every event too, signed under its own secret.
    organizer = receiver.answered("/organizer")
    assert [p.event["event"] for p in organizer] == [p.event["event"] for p in team_posts]
    assert all(p.signature_problem(ORGANIZER_SECRET) is None for p in organizer)
    # And the charts have the interval it was down.
    (service,) = timeline["services"]
    (interval,) = service["down"]
    assert interval["came_back"] is True
    assert interval["start"] == down["at"] and interval["end"] == up["at"]


def test_a_receiver_failing_once_gets_the_event_once_after_a_retry(
    notifying_hub: LiveServer, receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    receiver.statuses["/team"] = [500]
    with httpx.Client(base_url=notifying_hub.url) as c, live_server(Recognizer().app()) as rec:
        team = register_team(c, [rec.url])
        secret = set_webhook(c, team.provider_guid, team.api_key, f"{receiver.url}/team")
        dataset = seed_dataset(database_url, tmp_path / "data", labels(3))
        run = start_run(c, dataset, "dryrun")
        wait_for(c, run["id"], {"completed"}, WAIT_S)
        poll_until(
            lambda: {"run.started", "run.ended"} <= set(receiver.kinds("/team")),
            "both events told (one of them after a retry)",
            WAIT_S,
        )
        metrics = c.get("/metrics").text

    # The organizer sees the retry among the hub's metrics.
    assert re.search(r'^recoghub_notification_posts_total\{result="retry"\} [1-9]', metrics, re.M)
    with receiver.lock:
        posts = [p for p in receiver.posts if p.path == "/team"]
    # A short run's two events can be in the outbox together, and deliveries are not held
    # in order behind a failing one: the failed post is either event, retried as it was.
    first = posts[0]
    (retry,) = [p for p in posts[1:] if p.event["id"] == first.event["id"]]
    assert (first.status, retry.status) == (500, 200)
    assert first.event == retry.event and first.event["event"] in {"run.started", "run.ended"}
    # One delivery: the same request id on each attempt, and told once.
    assert first.headers["x-recog-request-id"] == retry.headers["x-recog-request-id"]
    assert sorted(receiver.kinds("/team")) == ["run.ended", "run.started"]
    assert retry.signature_problem(secret) is None


def test_a_hanging_receiver_does_not_hold_up_the_run(
    notifying_hub: LiveServer, receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    receiver.hang.update({"/team", "/organizer"})
    with httpx.Client(base_url=notifying_hub.url) as c, live_server(Recognizer().app()) as rec:
        team = register_team(c, [rec.url])
        set_webhook(c, team.provider_guid, team.api_key, f"{receiver.url}/team")
        dataset = seed_dataset(database_url, tmp_path / "data", labels(30))
        run = start_run(c, dataset, "dryrun")
        poll_until(receiver.hanging, "a webhook post hanging", WAIT_S)
        finished = wait_for(c, run["id"], {"completed"}, WAIT_S)
        # The run completed while every post to the receivers hung unanswered.
        assert receiver.answered("/team") == [] and receiver.answered("/organizer") == []
        assert outcomes(c, finished["id"]) == {"ok": 30}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.1.2.3/hook", "a private address"),
        ("http://169.254.169.254/latest", "a link-local address"),
        ("http://[fd00::1]:8080/hook", "a private address"),
    ],
)
def test_a_webhook_at_a_refused_address_is_refused_when_set(
    hub: LiveServer, url: str, reason: str
) -> None:
    with httpx.Client(base_url=hub.url) as c:
        r = c.post("/api/v1/providers", json={"name": "t"}, headers=admin_headers())
        provider = r.json()
        r = c.patch(
            f"/api/v1/providers/{provider['guid']}",
            json={"notification_url": url},
            headers=bearer(provider["api_key"]),
        )
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "endpoint_not_allowed"
        assert reason in r.json()["detail"] and "RECOGHUB_ENDPOINT_ALLOW" in r.json()["detail"]
        shown = c.get(f"/api/v1/providers/{provider['guid']}", headers=admin_headers()).json()
        assert shown["notification_url"] is None

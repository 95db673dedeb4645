"""`POST /api/v1/services/{guid}/check`: ping and probe every instance of a service."""

from collections.abc import Callable

import httpx
import pytest

from tests.builders import admin_headers, bearer, register_team
from tests.servers import LiveServer

# Checked by the API process: no test here dispatches a run.
pytestmark = pytest.mark.api_only

Recognizers = Callable[..., str]


def check_path(guid: str) -> str:
    return f"/api/v1/services/{guid}/check"


DELAY_MS = 100


def test_check_reports_a_down_instance_and_a_good_one(
    hub: LiveServer, recognizers: Recognizers, refused_url: Callable[[], str]
) -> None:
    good, down = recognizers(answer="cat:0.9;dog:0.1", delay_ms=DELAY_MS), refused_url()
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        team = register_team(client, [good, down])
        r = client.post(check_path(team.service_guid), headers=bearer(team.api_key))

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["service_guid"] == team.service_guid
    assert body["ok"] is False
    first, second = body["instances"]
    assert first["instance"] == good
    assert first["reachable"] is True and first["format_ok"] is True
    assert first["outcome"] == "ok"
    assert first["ping_ms"] is not None
    # The hub's latency includes the recognizer's time. Not `>= DELAY_MS`: the recognizer's
    # sleep may end early by how stale its event loop's cached clock was when it began
    # (uvloop/libuv read a millisecond clock once a loop turn: 9.746 ms was seen for 10),
    # never by half; a latency not measured around the request would be far under it.
    assert first["latency_ms"] >= DELAY_MS / 2
    assert first["tags"] == [{"tag": "cat", "score": 0.9}, {"tag": "dog", "score": 0.1}]
    assert first["detail"] is None
    assert second["instance"] == down
    assert second["reachable"] is False and second["format_ok"] is False
    assert second["outcome"] == "connect_error"
    assert "cannot reach" in second["detail"]


def test_check_of_a_healthy_service_is_ok(sqlite_hub: LiveServer, recognizers: Recognizers) -> None:
    with httpx.Client(base_url=sqlite_hub.url, timeout=30) as client:
        team = register_team(client, [recognizers(), recognizers()])
        r = client.post(check_path(team.service_guid), headers=admin_headers())

    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True
    assert [i["format_ok"] for i in r.json()["instances"]] == [True, True]


def test_check_shows_a_bad_format_with_its_entry(
    sqlite_hub: LiveServer, recognizers: Recognizers
) -> None:
    with httpx.Client(base_url=sqlite_hub.url, timeout=30) as client:
        team = register_team(client, [recognizers(bad_rate=1.0)])
        r = client.post(check_path(team.service_guid), headers=bearer(team.api_key))

    assert r.status_code == 200, r.text
    [instance] = r.json()["instances"]
    assert instance["reachable"] is True
    assert instance["format_ok"] is False
    assert instance["outcome"] == "bad_format"
    assert instance["detail"].startswith("recognize: entry ")
    assert instance["raw"]


def test_check_is_for_the_owner_and_the_organizer_only(
    open_hub: LiveServer, recognizers: Recognizers
) -> None:
    url = recognizers()
    with httpx.Client(base_url=open_hub.url, timeout=30) as client:
        owner, other = register_team(client, [url]), register_team(client, [url])
        by_other = client.post(check_path(owner.service_guid), headers=bearer(other.api_key))
        anonymous = client.post(check_path(owner.service_guid))
        wrong_kind = client.post(check_path(owner.provider_guid), headers=bearer(owner.api_key))

    assert by_other.status_code == 403
    assert anonymous.status_code == 401
    assert wrong_kind.status_code == 404
    assert wrong_kind.json()["code"] == "wrong_guid_kind"


def test_an_instance_refusing_the_hubs_signature_is_not_up(
    sqlite_hub: LiveServer, recognizers: Recognizers
) -> None:
    # Its /ping answers 200, unsigned; but it refuses every request the hub signs.
    with httpx.Client(base_url=sqlite_hub.url, timeout=30) as client:
        team = register_team(client, [recognizers(secret="not-the-services-secret")])
        r = client.post(check_path(team.service_guid), headers=bearer(team.api_key))

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is False
    [instance] = body["instances"]
    assert instance["reachable"] is False and instance["format_ok"] is False
    assert (instance["outcome"], instance["status"]) == ("http_error", 401)
    assert "the recognizer rejected the hub's signature" in instance["detail"]

"""The connect route (SPEC §10): hellos refused with their close codes, relay and check
through a connected recognizer, and answers that break the protocol."""

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from gateway.db import make_engine
from gateway.dialout import frames, routes, service
from gateway.protocol.result_string import MAX_RESULT_BYTES
from gateway.runs.models import Worker
from tests.builders import admin_headers, bearer, png_bytes, register_team
from tests.dialout.scripted import ScriptedRecognizer, close_of, result
from tests.dialout.support import REPO, dialout_recognizer
from tests.runs.api_builders import poll_until
from tests.servers import LiveServer

CLI = str(Path(sys.executable).parent / "recoghub-cli")


def hello(service_guid: str, **extra: object) -> dict[str, object]:
    return {
        "type": "hello",
        "protocol": frames.PROTOCOL,
        "service_guid": service_guid,
        "instance": "test",
        "max_concurrency": 2,
        **extra,
    }


async def test_a_refused_hello_gets_its_close_code_and_what_to_do(hub: LiveServer) -> None:
    with httpx.Client(base_url=hub.url) as c:
        team = register_team(c, [], name="mine")
        other = register_team(c, [], name="theirs")
        disabled = register_team(c, [], name="off")
        r = c.patch(
            f"/api/v1/services/{disabled.service_guid}",
            json={"enabled": False},
            headers=admin_headers(),
        )
        assert r.status_code == 200, r.text

    code, reason = await close_of(hub.url, team.api_key, hello(other.service_guid))
    assert code == frames.OTHER_PROVIDER and "another provider" in reason
    code, reason = await close_of(hub.url, team.api_key, hello(team.provider_guid))
    assert code == frames.UNKNOWN_SERVICE and "is a provider GUID" in reason
    assert "service GUID" in reason
    unknown = "00000000-0000-4000-8000-000000000000"
    code, reason = await close_of(hub.url, team.api_key, hello(unknown))
    assert code == frames.UNKNOWN_SERVICE and f"no service {unknown}" in reason
    code, reason = await close_of(hub.url, disabled.api_key, hello(disabled.service_guid))
    assert code == frames.SERVICE_DISABLED and "enable it" in reason
    code, reason = await close_of(hub.url, team.api_key, hello(team.service_guid, protocol="x"))
    assert code == frames.BAD_HELLO and "recoghub-ws/1" in reason

    code, text = await close_of(hub.url, team.api_key, hello(team.service_guid))
    welcome = json.loads(text)
    assert code is None and welcome["type"] == "welcome" and welcome["max_concurrency"] == 2
    assert welcome["instance_id"].startswith("test/")


def test_a_connected_recognizer_is_told_of_a_new_dispatching_process(
    sqlite_hub: LiveServer, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "HUBS_EVERY_S", 0.05)
    with httpx.Client(base_url=sqlite_hub.url) as c:
        team = register_team(c, [])
    with ScriptedRecognizer(sqlite_hub.url, team.api_key, team.service_guid, []) as recognizer:
        assert recognizer.welcome is not None and recognizer.welcome["hubs"] == []
        assert recognizer.welcome["hub_id"]  # the hub's embedded worker, unnamed
        engine = make_engine(sqlite_url)
        try:
            with Session(engine) as session, session.begin():
                session.add(
                    Worker(id="worker-2", host="elsewhere", pid=1, public_url="http://w2:8001")
                )
        finally:
            engine.dispose()
        told = poll_until(lambda: recognizer.hubs, "a hubs message")
        assert told[0] == [{"hub_id": service.hub_id("worker-2"), "url": "http://w2:8001"}]


def test_the_recognizer_stops_with_the_hubs_reason(sqlite_hub: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_hub.url) as c:
        team = register_team(c, [])
    done = subprocess.run(
        [sys.executable, "-m", "sample_recognizer", "--connect", sqlite_hub.url,
         "--service", team.provider_guid, "--key", team.api_key],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "the hub refused the connection: unknown service (4404)" in done.stderr
    assert "is a provider GUID" in done.stderr


def test_the_recognizer_stops_on_a_bad_key(sqlite_hub: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_hub.url) as c:
        team = register_team(c, [])
    done = subprocess.run(
        [sys.executable, "-m", "sample_recognizer", "--connect", sqlite_hub.url,
         "--service", team.service_guid, "--key", "rk_not_a_key"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "the hub refused the connection: bad API key (401)" in done.stderr


def test_relay_and_check_go_through_a_connected_recognizer(
    sqlite_hub: LiveServer, tmp_path: Path
) -> None:
    with httpx.Client(base_url=sqlite_hub.url, timeout=30) as c:
        team = register_team(c, [], name="firewalled")
        url = f"/api/v1/services/{team.service_guid}"
        r = c.post(f"{url}/recognize", content=png_bytes(), headers=bearer(team.api_key))
        assert r.status_code == 409 and r.json()["code"] == "no_instances"
        assert "--connect" in r.json()["detail"]
        with dialout_recognizer(sqlite_hub.url, team, tmp_path, "--answer", "owl:0.7;cat:0.2"):
            r = c.post(
                f"{url}/recognize",
                content=png_bytes(),
                headers={**bearer(team.api_key), "Content-Type": "image/png"},
            )
            assert r.status_code == 200, r.text
            assert [t["tag"] for t in r.json()["tags"]] == ["owl", "cat"]

            r = c.post(f"{url}/check", headers=bearer(team.api_key))
            assert r.status_code == 200, r.text
            check = r.json()
            assert check["ok"] is True
            (instance,) = check["instances"]
            assert instance["connected"] is True and instance["reachable"] is True
            assert instance["instance"].startswith("dialout:")
            assert instance["format_ok"] is True and instance["ping_outcome"] == "ok"

            command = [CLI, "check", "--hub", sqlite_hub.url, "--service", team.service_guid]
            cli = subprocess.run(
                [*command, "--key", team.api_key],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert cli.returncode == 0, cli.stdout + cli.stderr
            assert "connected" in cli.stdout and "dialout:" in cli.stdout


@pytest.mark.parametrize(
    ("answer", "outcome", "requests"),
    [
        (result(200, "cat:0.9;;dog:0.1"), "bad_format", 1),
        (result(200, "x:1;" * (MAX_RESULT_BYTES // 4 + 1)), "too_large", 1),
        (result(500, "model crashed"), "http_error", 3),
        (result(404, "no such model"), "http_error", 1),
        (lambda request_id: '{"type": "result", "status": "ok"}', "connect_error", 1),
    ],
)
def test_a_bad_answer_gets_the_outcome_a_bad_http_answer_would(
    sqlite_hub: LiveServer, answer: object, outcome: str, requests: int
) -> None:
    with httpx.Client(base_url=sqlite_hub.url, timeout=30) as c:
        team = register_team(c, [])
        headers = {**bearer(team.api_key), "Content-Type": "image/png"}
        with ScriptedRecognizer(sqlite_hub.url, team.api_key, team.service_guid, [answer]) as bad:  # type: ignore[list-item]
            r = c.post(
                f"/api/v1/services/{team.service_guid}/recognize",
                content=png_bytes(),
                headers=headers,
            )
            assert r.status_code == 502, r.text
            assert r.json()["code"] == outcome
            assert len(bad.requests) == requests
            if outcome == "connect_error":  # a message naming no request ends the connection
                assert poll_until(bad.closed.is_set, "the hub to close the connection")
                assert bad.close_code == frames.POLICY_VIOLATION

"""What a hostile team's endpoint cannot make the hub do (SPEC §9): reach inside through DNS
or a policy change, follow a redirect, or read an endless answer."""

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db import make_engine
from gateway.dispatch.policy import REFUSED_DETAIL
from gateway.runs.models import WorkItem
from tests.builders import (
    ADMIN_TOKEN,
    admin_headers,
    bearer,
    hub_settings,
    png_bytes,
    register_team,
)
from tests.relay.hostile import HostileRecognizers, SecretServer
from tests.runs.api_builders import LABELS, seed_dataset, start_run, wait_for
from tests.servers import LiveServer, live_server

SECRET = "SECRET-7f3a9c"


def _relay(client: httpx.Client, guid: str, token: str) -> httpx.Response:
    return client.post(
        f"/api/v1/services/{guid}/recognize", content=png_bytes(), headers=bearer(token)
    )


def _check(client: httpx.Client, guid: str, token: str) -> httpx.Response:
    return client.post(f"/api/v1/services/{guid}/check", headers=bearer(token))


def _run_items(database_url: str, client: httpx.Client, guid: str) -> list[WorkItem]:
    """A dry run of service `guid` on the 4-image dataset, to its end; its work items."""
    run = start_run(client, "pets", "dryrun", services=[guid])
    wait_for(client, run["id"], {"completed", "failed"})
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.scalars(select(WorkItem).where(WorkItem.run_id == run["id"])))
    finally:
        engine.dispose()


@pytest.fixture
def hidden() -> Iterator[tuple[SecretServer, LiveServer]]:
    secret = SecretServer(SECRET)
    with live_server(secret.app) as server:
        yield secret, server


def test_an_address_the_policy_refuses_is_never_contacted(
    database_url: str, tmp_path: Path, hidden: tuple[SecretServer, LiveServer]
) -> None:
    """A name resolving inside (`localhost`), and a literal address registered while the
    organizer allowed it, are refused at connection time by a hub that allows nothing."""
    from gateway.app import create_app

    target, server = hidden
    port = server.url.rsplit(":", 1)[1]
    data_dir = tmp_path / "data"
    with live_server(create_app(hub_settings(database_url, data_dir))) as lab:
        with httpx.Client(base_url=lab.url, timeout=30) as client:
            literal = register_team(client, [f"http://127.0.0.1:{port}"])
    seed_dataset(database_url, data_dir, LABELS)

    closed = hub_settings(database_url, data_dir, endpoint_allow="")
    with (
        live_server(create_app(closed)) as hub,
        httpx.Client(base_url=hub.url, timeout=30) as client,
    ):
        by_name = register_team(client, [f"http://localhost:{port}"])
        for team in (by_name, literal):
            relayed = _relay(client, team.service_guid, team.api_key)
            assert relayed.status_code == 502, relayed.text
            assert relayed.json()["code"] == "connect_error"
            assert REFUSED_DETAIL in relayed.json()["detail"]

            [instance] = _check(client, team.service_guid, team.api_key).json()["instances"]
            assert instance["ping_outcome"] == "connect_error"
            assert instance["outcome"] == "connect_error"
            assert REFUSED_DETAIL in instance["detail"]

            items = _run_items(database_url, client, team.service_guid)
            assert len(items) == len(LABELS)
            for item in items:
                assert item.outcome == "connect_error"
                assert item.detail is not None and REFUSED_DETAIL in item.detail

    assert target.seen == []


def test_a_redirect_is_an_http_error_and_its_target_is_never_read(
    database_url: str,
    tmp_path: Path,
    hidden: tuple[SecretServer, LiveServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from gateway.app import create_app

    caplog.set_level(logging.DEBUG)
    target, server = hidden
    hostile = HostileRecognizers(redirect_to=f"{server.url}/api/v1/providers")
    data_dir = tmp_path / "data"
    with (
        live_server(hostile.app) as recognizer,
        live_server(create_app(hub_settings(database_url, data_dir))) as hub,
        httpx.Client(base_url=hub.url, timeout=30) as client,
    ):
        seed_dataset(database_url, data_dir, LABELS)
        team = register_team(client, [f"{recognizer.url}/redirect"])

        relayed = _relay(client, team.service_guid, team.api_key)
        checked = _check(client, team.service_guid, team.api_key)
        items = _run_items(database_url, client, team.service_guid)
        results = client.get(
            "/api/v1/runs",
            headers=admin_headers(),
        ).text + "".join(repr(vars(item)) for item in items)

    assert relayed.status_code == 502
    assert relayed.json()["code"] == "http_error"
    assert "HTTP 302" in relayed.json()["detail"]
    [attempt] = [checked.json()["instances"][0]]
    assert attempt["outcome"] == "http_error" and attempt["status"] == 302
    assert attempt["ping_outcome"] == "http_error"
    assert [(item.outcome, item.http_status, item.attempts) for item in items] == [
        ("http_error", 302, 1)
    ] * len(LABELS)
    assert target.seen == []
    for text in (relayed.text, checked.text, results, caplog.text):
        assert SECRET not in text
    assert hostile.seen  # the hub did talk to the team's endpoint


def test_an_endless_or_huge_answer_is_too_large_on_relay_and_check(
    sqlite_hub: LiveServer,
) -> None:
    hostile = HostileRecognizers()
    with (
        live_server(hostile.app) as recognizer,
        httpx.Client(base_url=sqlite_hub.url, timeout=30) as client,
    ):
        for kind in ("endless", "huge"):
            team = register_team(client, [f"{recognizer.url}/{kind}"])
            relayed = _relay(client, team.service_guid, team.api_key)
            assert relayed.status_code == 502, relayed.text
            assert relayed.json()["code"] == "too_large"
            assert relayed.json()["raw"] is None

            [instance] = _check(client, team.service_guid, team.api_key).json()["instances"]
            assert instance["reachable"] is False
            assert instance["ping_outcome"] == "too_large"
            assert instance["outcome"] == "too_large"
            assert "65536-byte limit" in instance["detail"]


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_check_of_endless_pings_keeps_the_hubs_memory_flat_and_its_ping_answering(
    sqlite_hub: LiveServer,
) -> None:
    """Checked as the organizer, whom the check rate limit leaves alone.
    The hub serves in this process, so this process's RSS is the hub's (plus the
    hostile server's, which only makes the bound stricter)."""
    hostile = HostileRecognizers()
    pings: list[int] = []
    checking_done = threading.Event()

    def ping_the_hub() -> None:
        with httpx.Client(base_url=sqlite_hub.url, timeout=10) as pinger:
            while not checking_done.is_set() or not pings:
                pings.append(pinger.get("/api/v1/ping").status_code)

    with (
        live_server(hostile.app) as recognizer,
        httpx.Client(base_url=sqlite_hub.url, timeout=60) as client,
    ):
        endpoints = [f"{recognizer.url}/{kind}/{n}" for kind in ("endless", "huge") for n in (1, 2)]
        team = register_team(client, endpoints)
        assert _check(client, team.service_guid, ADMIN_TOKEN).status_code == 200  # warm-up
        before = _rss_bytes()

        pinger = threading.Thread(target=ping_the_hub)
        pinger.start()
        try:
            for _ in range(5):
                checked = _check(client, team.service_guid, ADMIN_TOKEN).json()
                assert [i["ping_outcome"] for i in checked["instances"]] == ["too_large"] * 4
        finally:
            checking_done.set()
            pinger.join(timeout=30)
        growth = _rss_bytes() - before

    assert growth < 50 * 1024 * 1024, f"RSS grew by {growth / 2**20:.0f} MB"
    assert pings and set(pings) == {200}

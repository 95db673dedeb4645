"""Dial-out instances beside others (SPEC §10): a recognizer killed mid-run and started
again, and two connections of one service sharing its load."""

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.db import make_engine
from tests.builders import hub_settings, register_team
from tests.dialout.gated_model import ANSWER
from tests.dialout.support import DialoutProcess, gated_args
from tests.runs.api_builders import poll_until, seed_dataset, start_run, wait_for
from tests.runs.builders import recognizer_app, work_items
from tests.servers import LiveServer, live_server

LABELS = {f"img-{n:02d}": ("cat", "dog", "bird")[n % 3] for n in range(12)}


@pytest.fixture
def patient_hub(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A hub whose requests wait for the tests' gates (30 s before a timeout)."""
    settings = hub_settings(database_url, tmp_path / "data", request_timeout_s=30.0)
    with live_server(create_app(settings)) as server:
        yield server


def arrived(gate: Path) -> int:
    folder = gate / "arrived"
    return len(list(folder.iterdir())) if folder.exists() else 0


def test_a_recognizer_killed_mid_run_loses_nothing(
    patient_hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
    http_gate = threading.Event()
    app, seen = recognizer_app(lambda _: ANSWER, gate=http_gate)
    gate = tmp_path / "gate"
    with live_server(app) as http, httpx.Client(base_url=patient_hub.url) as c:
        team = register_team(c, [http.url], max_concurrency=4)
        first = DialoutProcess(
            patient_hub.url, team, tmp_path / "first.log", *gated_args(),
            RECOGHUB_TEST_GATE=str(gate),
        )  # fmt: skip
        try:
            first.wait_connected()
            run = start_run(c, dataset_id, "dryrun", services=[team.service_guid])
            poll_until(lambda: arrived(gate) >= 1 and seen.in_flight >= 1, "requests on both")
            in_flight_when_killed = arrived(gate)
            first.kill()
        finally:
            first.stop()
        # What the killed recognizer held is sent again, to the other instance.
        poll_until(lambda: seen.in_flight == 4, "the HTTP instance to hold every slot")
        second = DialoutProcess(patient_hub.url, team, tmp_path / "second.log")
        try:
            second.wait_connected()
            http_gate.set()
            done = wait_for(c, run["id"], {"completed"})
        finally:
            second.stop()
    (service,) = done["services"]
    assert service["outcomes"]["ok"] == len(LABELS) == service["done"]

    engine = make_engine(database_url)
    try:
        items = work_items(engine, run["id"])
    finally:
        engine.dispose()
    assert len(items) == len(LABELS) and all(i.state == "done" for i in items)
    assert all(i.outcome == "ok" for i in items)
    logs = [i.attempt_log for i in items]
    moved = [log for log in logs if log[0]["outcome"] == "connect_error"]
    # Each request the killed recognizer held (some may have been on the way to it,
    # not yet seen) failed with the connection and was answered by the other instance.
    assert len(moved) >= in_flight_when_killed >= 1
    killed = moved[0][0]["instance"]
    assert all(
        a["outcome"] == "connect_error" for log in logs for a in log if a["instance"] == killed
    )
    for log in moved:
        assert log[0]["instance"].startswith("dialout:") and "dropped" in log[0]["detail"]
        assert log[-1]["outcome"] == "ok" and log[-1]["instance"] == http.url
    dialout_labels = {a["instance"] for log in logs for a in log if a["instance"] != http.url}
    assert len(dialout_labels) == 2  # the killed connection, and the restarted one
    restarted = [
        log for log in logs if log[-1]["instance"] not in (http.url, moved[0][0]["instance"])
    ]
    assert restarted, "the restarted recognizer answered nothing"


def test_two_connections_of_a_service_share_its_load(
    patient_hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
    gates = [tmp_path / "gate-a", tmp_path / "gate-b"]
    with httpx.Client(base_url=patient_hub.url) as c:
        team = register_team(c, [], max_concurrency=4)
        processes = [
            DialoutProcess(
                patient_hub.url,
                team,
                tmp_path / f"{n}.log",
                *gated_args(),
                "--concurrency",
                "4",
                RECOGHUB_TEST_GATE=str(gate),
            )  # fmt: skip
            for n, gate in enumerate(gates)
        ]
        try:
            for process in processes:
                process.wait_connected()
            run = start_run(c, dataset_id, "dryrun", services=[team.service_guid])
            poll_until(lambda: sum(arrived(g) for g in gates) >= 4, "4 requests in flight")
            # The service's concurrency holds across both connections.
            assert sum(arrived(g) for g in gates) == 4
            assert all(arrived(g) >= 1 for g in gates)
            for gate in gates:
                (gate / "open").touch()
            done = wait_for(c, run["id"], {"completed"})
        finally:
            for process in processes:
                process.stop()
    (service,) = done["services"]
    assert service["outcomes"]["ok"] == len(LABELS)
    assert sum(arrived(g) for g in gates) == len(LABELS)
    assert all(arrived(g) >= 3 for g in gates)

"""Ids the databases cannot hold are input errors, and every timestamp carries its offset."""

import re

import httpx

from gateway.wire import SPACE_CLASS
from tests.builders import admin_headers, register_team
from tests.servers import LiveServer

IN_RANGE = (1, 2**31 - 1)
OUT_OF_RANGE = (2**31, 2**63, 2**64, 10**30, -1, 0)
ID_ROUTES = (
    ("GET", "/api/v1/runs/{id}"),
    ("POST", "/api/v1/runs/{id}/cancel"),
    ("POST", "/api/v1/runs/{id}/resume"),
    ("POST", "/api/v1/runs/{id}/publish"),
    ("GET", "/api/v1/runs/{id}/leaderboard"),
    ("GET", "/api/v1/runs/{id}/results?service=00000000-0000-4000-8000-000000000000"),
    ("GET", "/api/v1/datasets/{id}"),
)
OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_ids_out_of_range_are_422_and_unknown_ids_404(hub: LiveServer) -> None:
    with httpx.Client(base_url=hub.url, headers=admin_headers(), timeout=10) as client:
        for method, route in ID_ROUTES:
            for run_id in (*IN_RANGE, *OUT_OF_RANGE):
                r = client.request(method, route.format(id=run_id))
                expected = 404 if run_id in IN_RANGE else 422
                assert r.status_code == expected, (method, route, run_id, r.text)
                assert r.json()["code"] == ("not_found" if expected == 404 else "invalid_input")
                assert r.json()["detail"]


def test_the_dataset_of_a_new_run_is_checked_the_same_way(hub: LiveServer) -> None:
    cases: list[tuple[object, int]] = [
        (2**31 - 1, 404),
        (2**31, 422),
        (2**63, 422),
        (-(2**63) - 1, 422),
        (10**30, 422),
        ("9223372036854775808", 404),  # a name: no dataset is called that
        ("2147483648", 404),
        ("\u00b9", 404),  # a digit to str.isdigit, but no number
    ]
    for dataset, status in cases:
        body = {"dataset": dataset, "phase": "dryrun"}
        r = httpx.post(f"{hub.url}/api/v1/runs", json=body, headers=admin_headers())
        assert r.status_code == status, (dataset, r.text)
        assert r.json()["code"] == ("not_found" if status == 404 else "invalid_input")


def test_a_seed_out_of_range_is_422(hub: LiveServer) -> None:
    for seed in (2**63, -(2**63) - 1):
        body = {"dataset": 1, "phase": "dryrun", "seed": seed}
        r = httpx.post(f"{hub.url}/api/v1/runs", json=body, headers=admin_headers())
        assert (r.status_code, r.json()["code"]) == (422, "invalid_input")


def test_timestamps_leave_with_their_offset(hub: LiveServer) -> None:
    with httpx.Client(base_url=hub.url, headers=admin_headers(), timeout=10) as client:
        team = register_team(client, ["https://recog.example.org"])
        provider = client.get(f"/api/v1/providers/{team.provider_guid}").json()
        service = client.get(f"/api/v1/services/{team.service_guid}").json()
    for stamp in (provider["created_at"], service["created_at"]):
        assert OFFSET.match(stamp), stamp


def test_the_names_pattern_knows_the_white_space_that_strip_removes() -> None:
    """The schema's NOT_BLANK pattern and the hub's `strip()` agree on every character."""
    space = re.compile(f"[{SPACE_CLASS}]")
    for code in range(0x110000):
        char = chr(code)
        assert bool(space.fullmatch(char)) == char.isspace(), hex(code)

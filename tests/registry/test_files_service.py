"""A team's `prediction files` service (SPEC §13) is the hub's: made for its first scored
file, it does not count toward RECOGHUB_PROVIDER_SERVICES_MAX nor
RECOGHUB_PROVIDER_CONCURRENCY_MAX, is not in the team's list of services, and cannot be
enabled, changed, deleted or submitted as a live service."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from tests.builders import admin_headers, bearer, hub_settings, register_team
from tests.challenges.builders import create_challenge, phase_body, submit
from tests.challenges.offline_builders import download, seed, upload
from tests.servers import LiveServer, live_server

SERVICES = "/api/v1/services"
PETS = {"img-a": ["cat"], "img-b": ["dog"]}


@pytest.fixture
def capped_hub(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    settings = hub_settings(
        database_url,
        tmp_path / "data",
        embedded_worker=False,
        provider_services_max=2,
        provider_concurrency_max=5,
    )
    with live_server(create_app(settings)) as server:
        yield server


def test_the_files_service_is_not_a_team_service_nor_counted_by_its_caps(
    capped_hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed(database_url, tmp_path / "data", PETS)
    with httpx.Client(base_url=capped_hub.url, timeout=60) as c:
        alpha = register_team(c, ["https://recog.example.org"], name="alpha", max_concurrency=4)
        key = bearer(alpha.api_key)
        create_challenge(c, "pets-cup", phase_body(kind="both"))
        download(c, alpha.api_key)
        r = upload(c, alpha.api_key, b"cat\ndog\n", "ilsvrc")
        assert r.status_code == 201, r.text
        files_guid = r.json()["service_guid"]
        assert files_guid and files_guid != alpha.service_guid
        assert r.json()["service_name"] == "prediction files"

        # Not in the team's list, nor in the organizer's.
        listed = c.get(SERVICES, headers=key).json()
        assert [row["guid"] for row in listed] == [alpha.service_guid]
        everything = c.get(SERVICES, headers=admin_headers()).json()
        assert files_guid not in {row["guid"] for row in everything}

        # Not counted: a second service of 1 fits both caps (2 services, 4 + 1 = 5).
        body = {
            "provider_guid": alpha.provider_guid,
            "name": "second",
            "endpoints": ["https://recog.example.org"],
            "max_concurrency": 1,
        }
        r = c.post(SERVICES, json=body, headers=key)
        assert r.status_code == 201, r.text
        r = c.post(SERVICES, json={**body, "name": "third"}, headers=key)
        assert (r.status_code, r.json()["code"]) == (409, "provider_services_max")
        assert "has 2 services" in r.json()["detail"]

        # The hub's, not the team's: never enabled, changed, deleted or run.
        for answer in (
            c.patch(f"{SERVICES}/{files_guid}", json={"enabled": True}, headers=key),
            c.patch(f"{SERVICES}/{files_guid}", json={"max_concurrency": 1}, headers=key),
            c.delete(f"{SERVICES}/{files_guid}", headers=key),
            submit(c, alpha.api_key, files_guid),
        ):
            assert (answer.status_code, answer.json()["code"]) == (409, "files_service")
        shown = c.get(f"{SERVICES}/{files_guid}", headers=key).json()
        assert shown["enabled"] is False

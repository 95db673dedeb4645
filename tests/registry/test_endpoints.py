"""Endpoints a service may name: canonical URLs only, the address policy, at most 16."""

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.builders import admin_headers, bearer, hub_settings, register_team
from tests.servers import live_server

SERVICES = "/api/v1/services"
INSIDE = ["http://127.0.0.1:8080", "http://10.0.0.1/", "http://[::1]/", "http://169.254.169.254/"]
ALLOW_INSIDE = "127.0.0.0/8,10.0.0.0/8,::1/128,169.254.169.254/32"

HubWith = Callable[[str], httpx.Client]


@pytest.fixture
def hub_with(database_url: str, tmp_path: Path) -> Iterator[HubWith]:
    """`hub_with(allow)`: a client of a live hub whose RECOGHUB_ENDPOINT_ALLOW is `allow`."""
    from gateway.app import create_app

    with ExitStack() as stack:

        def start(allow: str) -> httpx.Client:
            settings = hub_settings(
                database_url, tmp_path / "data", embedded_worker=False, endpoint_allow=allow
            )
            server = stack.enter_context(live_server(create_app(settings)))
            return stack.enter_context(httpx.Client(base_url=server.url, timeout=10))

        yield start


def _service(provider_guid: str, endpoint: str) -> dict[str, object]:
    return {"provider_guid": provider_guid, "name": "svc", "endpoints": [endpoint]}


def test_inside_addresses_are_refused_by_default_and_registered_once_allowed(
    hub_with: HubWith,
) -> None:
    default = hub_with("")
    team = register_team(default, ["https://recog.example.org"])
    as_team = bearer(team.api_key)

    for endpoint in INSIDE:
        created = default.post(
            SERVICES, json=_service(team.provider_guid, endpoint), headers=as_team
        )
        patched = default.patch(
            f"{SERVICES}/{team.service_guid}", json={"endpoints": [endpoint]}, headers=as_team
        )
        by_admin = default.post(
            SERVICES, json=_service(team.provider_guid, endpoint), headers=admin_headers()
        )
        for r in (created, patched, by_admin):
            assert r.status_code == 422, (endpoint, r.text)
            assert r.json()["code"] == "endpoint_not_allowed"
            assert "RECOGHUB_ENDPOINT_ALLOW" in r.json()["detail"]
    shown = default.get(f"{SERVICES}/{team.service_guid}", headers=as_team).json()
    assert shown["endpoints"] == ["https://recog.example.org"]

    allowed = hub_with(ALLOW_INSIDE)
    for endpoint in INSIDE:
        created = allowed.post(
            SERVICES, json=_service(team.provider_guid, endpoint), headers=as_team
        )
        assert created.status_code == 201, (endpoint, created.text)
        assert created.json()["endpoints"] == [endpoint.rstrip("/")]
    patched = allowed.patch(
        f"{SERVICES}/{team.service_guid}", json={"endpoints": INSIDE}, headers=as_team
    )
    assert patched.status_code == 200, patched.text


def test_a_private_address_outside_the_allowed_network_is_still_refused(
    hub_with: HubWith,
) -> None:
    client = hub_with("10.1.0.0/16")
    team = register_team(client, ["http://10.1.2.3:8080"])

    r = client.patch(
        f"{SERVICES}/{team.service_guid}",
        json={"endpoints": ["http://10.1.2.3:8080", "http://10.2.0.1:8080"]},
        headers=admin_headers(),
    )
    assert r.status_code == 422
    assert r.json()["code"] == "endpoint_not_allowed"
    assert "'http://10.2.0.1:8080' names a private address" in r.json()["detail"]
    # What to do, whole: the setting, that serve must be restarted, and a value.
    assert (
        "unless the organizer allows the network in RECOGHUB_ENDPOINT_ALLOW and restarts "
        "`recoghub serve`, e.g. RECOGHUB_ENDPOINT_ALLOW=10.2.0.1/32"
    ) in r.json()["detail"]
    local = client.patch(
        f"{SERVICES}/{team.service_guid}",
        json={"endpoints": ["http://127.0.0.1:8080"]},
        headers=admin_headers(),
    )
    assert "e.g. RECOGHUB_ENDPOINT_ALLOW=127.0.0.0/8,::1/128" in local.json()["detail"]


NOT_CANONICAL = [
    ("http://recog.example.org/\r\nX-Injected: 1", "contains white space or control characters"),
    ("http://recog.example.org/a\tb", "contains white space or control characters"),
    ("http://recog.example.org/\x00", "contains white space or control characters"),
    ("http://recog .example.org/", "contains white space or control characters"),
    ("http://2130706433/", "has a non-canonical IPv4 address"),
    ("http://127.1/", "has a non-canonical IPv4 address"),
    ("http://0/", "has a non-canonical IPv4 address"),
    ("http://0x7f.1/", "has a non-canonical IPv4 address"),
    ("http://0177.0.0.1/", "has a non-canonical IPv4 address"),
    ("http://1.2.3.4.5/", "has a non-canonical IPv4 address"),
    ("http://user:pw@recog.example.org/", "must not carry credentials"),
    ("http://@recog.example.org/", "must not carry credentials"),
    ("http://recog.example.org:/", "has a malformed host or port"),
    ("http://[::1]x/", "has a malformed host or port"),
    ("http://[v1.x]/", "has a malformed IPv6 address"),
    ("http://recog.example.org:0/", "has port 0"),
    ("http://recog..example.org/", "has a malformed host name"),
    ("http://-recog.example.org/", "has a malformed host name"),
    ("http://récog.example.org/", "has a non-ASCII host"),
    ("http://[fe80::1%25eth0]/", "has an IPv6 zone"),
    ("http://recog.example.org\\@evil/", "contains a backslash"),
    ("http:recog.example.org", "must start with http:// or https://"),
]


def test_only_canonical_endpoint_urls_are_stored(hub_with: HubWith) -> None:
    client = hub_with("")
    team = register_team(client, ["https://recog.example.org"])

    for endpoint, problem in NOT_CANONICAL:
        created = client.post(
            SERVICES, json=_service(team.provider_guid, endpoint), headers=admin_headers()
        )
        patched = client.patch(
            f"{SERVICES}/{team.service_guid}",
            json={"endpoints": [endpoint]},
            headers=admin_headers(),
        )
        for r in (created, patched):
            assert r.status_code == 422, (endpoint, r.text)
            assert r.json()["code"] == "invalid_input"
            assert problem in r.json()["detail"], (endpoint, r.json()["detail"])

    services = client.get(SERVICES, headers=admin_headers()).json()
    assert [s["endpoints"] for s in services] == [["https://recog.example.org"]]


def test_canonical_forms_are_accepted(hub_with: HubWith) -> None:
    client = hub_with("")
    team = register_team(client, ["https://recog.example.org"])
    endpoints = [
        "https://recog.example.org:8443/v1/",
        "http://93.184.216.34:8080",
        "http://[2606:2800:220:1::1]:8080",
        "http://xn--rcog-bpa.example.org",
        "http://recog-1.example.org.",
        "http://team_a:8080",
    ]

    r = client.patch(
        f"{SERVICES}/{team.service_guid}", json={"endpoints": endpoints}, headers=admin_headers()
    )
    assert r.status_code == 200, r.text
    assert r.json()["endpoints"][0] == "https://recog.example.org:8443/v1"


def test_a_service_has_at_most_16_endpoints(hub_with: HubWith) -> None:
    client = hub_with("")
    team = register_team(client, ["https://recog.example.org"])
    sixteen = [f"https://recog-{n}.example.org" for n in range(16)]

    ok = client.patch(
        f"{SERVICES}/{team.service_guid}", json={"endpoints": sixteen}, headers=admin_headers()
    )
    too_many = client.post(
        SERVICES,
        json={
            "provider_guid": team.provider_guid,
            "name": "x",
            "endpoints": [*sixteen, "https://17.example.org"],
        },
        headers=admin_headers(),
    )

    assert ok.status_code == 200, ok.text
    assert too_many.status_code == 422
    assert "at most 16" in too_many.json()["detail"]

"""Services through the API: the life of a service, its secret, owners and bad input."""

import uuid

import httpx
from sqlalchemy.orm import Session

from gateway.datasets.models import Dataset
from gateway.db import make_engine
from gateway.registry.service import get_service, service_target
from gateway.runs.models import Run, RunService
from tests.builders import Team, admin_headers, bearer, register_team

SERVICES = "/api/v1/services"


def test_a_service_is_created_listed_changed_and_deleted(api: httpx.Client) -> None:
    r = api.post("/api/v1/providers", json={"name": "Dogs"}, headers=admin_headers())
    provider_guid = r.json()["guid"]
    body = {
        "provider_guid": provider_guid,
        "name": "breeds",
        "endpoints": ["http://recog-1.example.org:8080/", "https://recog.example.org/v1"],
        "domain": "dog-breeds",
    }
    r = api.post(SERVICES, json=body, headers=admin_headers())
    assert r.status_code == 201, r.text
    created = r.json()
    guid = created["guid"]
    assert uuid.UUID(guid)
    assert len(created["signing_secret"]) >= 32
    assert created["endpoints"] == [
        "http://recog-1.example.org:8080",
        "https://recog.example.org/v1",
    ]
    assert created["provider_guid"] == provider_guid
    assert (created["protocol"], created["enabled"], created["max_concurrency"]) == (
        "recoghub-v1",
        True,
        4,
    )

    shown = api.get(f"{SERVICES}/{guid}", headers=admin_headers()).json()
    assert "signing_secret" not in shown
    assert shown["domain"] == "dog-breeds"
    assert [s["guid"] for s in api.get(SERVICES, headers=admin_headers()).json()] == [guid]
    provider = api.get(f"/api/v1/providers/{provider_guid}", headers=admin_headers()).json()
    assert provider["services"] == [guid]

    change = {
        "name": "breeds-2",
        "endpoints": ["http://recog-2.example.org:9000"],
        "enabled": False,
        "domain": None,
        "max_concurrency": 16,
    }
    r = api.patch(f"{SERVICES}/{guid}", json=change, headers=admin_headers())
    assert r.status_code == 200, r.text
    assert "signing_secret" not in r.json()
    shown = api.get(f"{SERVICES}/{guid}", headers=admin_headers()).json()
    assert {k: shown[k] for k in change} == change

    r = api.delete(f"{SERVICES}/{guid}", headers=admin_headers())
    assert r.status_code == 204
    gone = api.get(f"{SERVICES}/{guid}", headers=admin_headers())
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_found"
    assert api.get(SERVICES, headers=admin_headers()).json() == []


def test_the_signing_secret_is_shown_again_only_when_rotated(api: httpx.Client) -> None:
    team = register_team(api, ["http://127.0.0.1:9"])

    r = api.patch(
        f"{SERVICES}/{team.service_guid}", json={"rotate_secret": True}, headers=admin_headers()
    )

    assert r.status_code == 200
    rotated = r.json()["signing_secret"]
    assert rotated and rotated != team.signing_secret
    assert rotated not in api.get(f"{SERVICES}/{team.service_guid}", headers=admin_headers()).text


def test_a_disabled_service_shows_enabled_false_everywhere(api: httpx.Client) -> None:
    team = register_team(api, ["http://127.0.0.1:9"])

    api.patch(f"{SERVICES}/{team.service_guid}", json={"enabled": False}, headers=admin_headers())

    assert (
        api.get(f"{SERVICES}/{team.service_guid}", headers=bearer(team.api_key)).json()["enabled"]
        is False
    )
    assert [s["enabled"] for s in api.get(SERVICES, headers=admin_headers()).json()] == [False]


def test_a_provider_manages_its_own_services_only(api: httpx.Client) -> None:
    alice = register_team(api, ["http://127.0.0.1:9"], name="alice")
    bob = register_team(api, ["http://127.0.0.1:9"], name="bob")
    as_alice = bearer(alice.api_key)

    own = api.post(
        SERVICES,
        json={"provider_guid": alice.provider_guid, "name": "second", "endpoints": ["http://a:1"]},
        headers=as_alice,
    )
    assert own.status_code == 201, own.text
    assert own.json()["signing_secret"]
    assert {s["provider_guid"] for s in api.get(SERVICES, headers=as_alice).json()} == {
        alice.provider_guid
    }
    assert len(api.get(SERVICES, headers=as_alice).json()) == 2

    for_bob = api.post(
        SERVICES,
        json={"provider_guid": bob.provider_guid, "name": "evil", "endpoints": ["http://a:1"]},
        headers=as_alice,
    )
    assert for_bob.status_code == 403
    assert "only create services for itself" in for_bob.json()["detail"]

    url = f"{SERVICES}/{bob.service_guid}"
    for r in (
        api.get(url, headers=as_alice),
        api.patch(url, json={"endpoints": ["http://evil:1"]}, headers=as_alice),
        api.delete(url, headers=as_alice),
    ):
        assert r.status_code == 403
        assert r.json() == {
            "detail": f"service {bob.service_guid} belongs to another provider; "
            "a provider may only use its own services",
            "code": "forbidden",
        }
    assert api.get(url, headers=bearer(bob.api_key)).json()["endpoints"] == ["http://127.0.0.1:9"]
    assert (
        api.get(SERVICES, params={"provider": bob.provider_guid}, headers=as_alice).status_code
        == 403
    )

    r = api.patch(f"{SERVICES}/{alice.service_guid}", json={"name": "renamed"}, headers=as_alice)
    assert r.json()["name"] == "renamed"
    assert api.delete(f"{SERVICES}/{alice.service_guid}", headers=as_alice).status_code == 204


def test_anonymous_callers_cannot_touch_services(api: httpx.Client) -> None:
    team = register_team(api, ["http://127.0.0.1:9"])
    url = f"{SERVICES}/{team.service_guid}"

    assert api.get(url).status_code == 401
    assert api.patch(url, json={"enabled": False}).status_code == 401
    assert api.delete(url).status_code == 401
    body = {"provider_guid": team.provider_guid, "name": "x", "endpoints": ["http://a:1"]}
    assert api.post(SERVICES, json=body).status_code == 401
    assert api.get(url, headers=admin_headers()).json()["enabled"] is True


BAD_ENDPOINTS = [
    ("ftp://files.example.org", "must start with http:// or https://"),
    ("localhost:8080", "must start with http:// or https://"),
    ("http://", "has no host"),
    ("http://host:8080/recog?token=1", "must not have a query"),
    ("http://host:8080/#top", "must not have a fragment"),
    ("http://host:99999", "is not a valid URL (Port out of range 0-65535)"),
]


def test_bad_endpoints_are_refused_by_name(api: httpx.Client) -> None:
    team = register_team(api, ["http://127.0.0.1:9"])

    for endpoint, problem in BAD_ENDPOINTS:
        body = {
            "provider_guid": team.provider_guid,
            "name": "bad",
            "endpoints": ["http://fine:1", endpoint],
        }
        created = api.post(SERVICES, json=body, headers=admin_headers())
        patched = api.patch(
            f"{SERVICES}/{team.service_guid}",
            json={"endpoints": [endpoint]},
            headers=admin_headers(),
        )
        for r in (created, patched):
            assert r.status_code == 422, endpoint
            assert r.json()["code"] == "invalid_input"
            assert f"endpoint {endpoint!r} {problem}" in r.json()["detail"]

    services = api.get(SERVICES, headers=admin_headers()).json()
    assert [s["endpoints"] for s in services] == [["http://127.0.0.1:9"]]


def test_other_bad_service_input_is_422(api: httpx.Client) -> None:
    team = register_team(api, ["http://127.0.0.1:9"])
    base = {"provider_guid": team.provider_guid, "name": "svc", "endpoints": ["http://a:1"]}

    for change, needle in [
        ({"endpoints": "http://a:1"}, "endpoints"),
        ({"endpoints": ["http://a:1", "http://a:1/"]}, "is listed twice"),
        ({"protocol": "v2"}, "protocol"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"guid": "svc-1"}, "is not a valid GUID"),
    ]:
        r = api.post(SERVICES, json={**base, **change}, headers=admin_headers())
        assert r.status_code == 422, change
        assert needle in r.json()["detail"]

    r = api.patch(f"{SERVICES}/{team.service_guid}", json={"name": None}, headers=admin_headers())
    assert r.status_code == 422
    assert "name cannot be null" in r.json()["detail"]


def test_a_chosen_service_guid_must_be_unique(api: httpx.Client) -> None:
    team = register_team(api, ["http://127.0.0.1:9"])
    chosen = str(uuid.uuid4())
    base = {"provider_guid": team.provider_guid, "name": "svc", "endpoints": ["http://a:1"]}

    first = api.post(SERVICES, json={**base, "guid": chosen}, headers=admin_headers())
    again = api.post(SERVICES, json={**base, "guid": chosen}, headers=admin_headers())
    provider_taken = api.post(
        SERVICES, json={**base, "guid": team.provider_guid}, headers=admin_headers()
    )

    assert first.status_code == 201
    assert first.json()["guid"] == chosen
    assert again.status_code == 409
    assert again.json()["detail"] == f"GUID {chosen} is already taken by a service"
    assert provider_taken.status_code == 409
    assert "already taken by a provider" in provider_taken.json()["detail"]


def test_the_dispatch_target_is_usable_after_the_session_closes(
    api: httpx.Client, database_url: str
) -> None:
    team: Team = register_team(api, ["http://127.0.0.1:9", "http://127.0.0.1:10/p"])
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            service = get_service(session, guid=team.service_guid.upper())
    finally:
        engine.dispose()

    target = service_target(service)  # instances and provider were loaded eagerly

    assert target.service_guid == team.service_guid
    assert target.provider_guid == team.provider_guid
    assert target.instances == ("http://127.0.0.1:9", "http://127.0.0.1:10/p")
    assert target.signing_secret == team.signing_secret


def test_a_service_with_run_results_is_kept_and_can_be_disabled(
    api: httpx.Client, database_url: str
) -> None:
    team = register_team(api, ["http://127.0.0.1:9"])
    engine = make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            dataset = Dataset(name="dogs", format="folder")
            session.add(dataset)
            session.flush()
            run = Run(
                dataset_id=dataset.id,
                phase="dryrun",
                state="completed",
                seed=1,
                timeout_s=1.0,
                max_attempts=1,
            )
            session.add(run)
            session.flush()
            service = get_service(session, guid=team.service_guid)
            session.add(
                RunService(run_id=run.id, service_id=service.id, position=0, max_concurrency=4)
            )
    finally:
        engine.dispose()
    url = f"{SERVICES}/{team.service_guid}"

    refused = api.delete(url, headers=admin_headers())

    assert refused.status_code == 409
    assert refused.json()["code"] == "conflict"
    assert "disable it instead" in refused.json()["detail"]
    assert api.patch(url, json={"enabled": False}, headers=admin_headers()).status_code == 200
    assert api.get(url, headers=admin_headers()).json()["enabled"] is False

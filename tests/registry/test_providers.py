"""Providers through the API: creation, the API key shown once, who sees what."""

import uuid
from collections.abc import Callable

import httpx

from gateway.auth import hash_token
from tests.builders import admin_headers, bearer

PROVIDERS = "/api/v1/providers"


def add_provider(api: httpx.Client, name: str, **fields: object) -> dict[str, object]:
    r = api.post(PROVIDERS, json={"name": name, **fields}, headers=admin_headers())
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def test_admin_creates_a_provider_whose_key_is_shown_only_once(api: httpx.Client) -> None:
    created = add_provider(api, "Dog Breeders", contact="dogs@example.org")

    assert uuid.UUID(str(created["guid"]))
    assert created["name"] == "Dog Breeders"
    assert created["contact"] == "dogs@example.org"
    assert created["services"] == []
    key = str(created["api_key"])
    assert len(key) >= 32

    one = api.get(f"{PROVIDERS}/{created['guid']}", headers=admin_headers())
    assert one.status_code == 200
    assert "api_key" not in one.json()
    assert one.json()["name"] == "Dog Breeders"
    listed = api.get(PROVIDERS, headers=admin_headers()).json()
    assert [p["guid"] for p in listed] == [created["guid"]]
    assert key not in api.get(PROVIDERS, headers=admin_headers()).text

    # The key works: the provider sees itself.
    mine = api.get(PROVIDERS, headers=bearer(key))
    assert mine.status_code == 200
    assert [p["guid"] for p in mine.json()] == [created["guid"]]


def test_the_api_key_is_stored_only_as_a_hash(
    api: httpx.Client, database_dump: Callable[[], str]
) -> None:
    created = add_provider(api, "Hash Check")
    key = str(created["api_key"])

    stored = database_dump()

    assert key not in stored
    assert hash_token(key) in stored


def test_a_chosen_guid_is_kept_and_must_be_a_unique_uuid(api: httpx.Client) -> None:
    chosen = str(uuid.uuid4())
    created = add_provider(api, "Chooser", guid=chosen.upper())
    assert created["guid"] == chosen

    again = api.post(PROVIDERS, json={"name": "Other", "guid": chosen}, headers=admin_headers())
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    assert f"GUID {chosen} is already taken by a provider" in again.json()["detail"]

    service = api.post(
        "/api/v1/services",
        json={"provider_guid": chosen, "name": "svc", "endpoints": ["http://127.0.0.1:9"]},
        headers=admin_headers(),
    ).json()
    taken = api.post(
        PROVIDERS, json={"name": "Other", "guid": service["guid"]}, headers=admin_headers()
    )
    assert taken.status_code == 409
    assert "already taken by a service" in taken.json()["detail"]

    malformed = api.post(PROVIDERS, json={"name": "X", "guid": "team-7"}, headers=admin_headers())
    assert malformed.status_code == 422
    assert malformed.json()["code"] == "invalid_input"
    assert "'team-7' is not a valid GUID" in malformed.json()["detail"]


def test_a_provider_sees_only_itself(api: httpx.Client) -> None:
    alice = add_provider(api, "Alice")
    bob = add_provider(api, "Bob")
    alice_key = bearer(str(alice["api_key"]))

    assert api.get(f"{PROVIDERS}/{alice['guid']}", headers=alice_key).status_code == 200
    assert [p["name"] for p in api.get(PROVIDERS, headers=alice_key).json()] == ["Alice"]

    other = api.get(f"{PROVIDERS}/{bob['guid']}", headers=alice_key)
    unknown = api.get(f"{PROVIDERS}/{uuid.uuid4()}", headers=alice_key)
    # Another provider and no provider at all look the same: nothing leaks.
    assert other.status_code == unknown.status_code == 403
    assert "Bob" not in other.text
    assert str(alice["guid"]) in other.json()["detail"]


def test_anonymous_callers_get_401_and_providers_403_on_admin_routes(api: httpx.Client) -> None:
    key = bearer(str(add_provider(api, "Team")["api_key"]))

    assert api.post(PROVIDERS, json={"name": "Anon"}).status_code == 401
    assert api.get(PROVIDERS).status_code == 401
    assert api.get("/api/v1/services").status_code == 401
    assert api.get(PROVIDERS, headers=bearer("rk_not-a-key")).status_code == 401

    r = api.post(PROVIDERS, json={"name": "Sneaky"}, headers=key)
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"
    assert [p["name"] for p in api.get(PROVIDERS, headers=admin_headers()).json()] == ["Team"]


def test_whoami_tells_the_organizer_from_a_team(api: httpx.Client) -> None:
    created = add_provider(api, "Owls")
    assert api.get("/api/v1/whoami", headers=admin_headers()).json() == {
        "role": "organizer",
        "provider": None,
    }
    me = api.get("/api/v1/whoami", headers=bearer(str(created["api_key"])))
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "provider"
    assert me.json()["provider"]["guid"] == created["guid"]
    assert me.json()["provider"]["name"] == "Owls"
    anonymous = api.get("/api/v1/whoami")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"
    unknown = api.get("/api/v1/whoami", headers=bearer("rk_" + "0" * 40))
    assert unknown.status_code == 401

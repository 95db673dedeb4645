"""A provider may set its service's max_concurrency up to RECOGHUB_SERVICE_CONCURRENCY_MAX
(default 8); the organizer may set more, and a provider may keep what the organizer set."""

import httpx

from tests.builders import admin_headers, bearer

SERVICES = "/api/v1/services"


def test_a_provider_is_held_to_the_cap_and_the_organizer_is_not(api: httpx.Client) -> None:
    provider = api.post("/api/v1/providers", json={"name": "t"}, headers=admin_headers()).json()
    key = bearer(provider["api_key"])
    body = {
        "provider_guid": provider["guid"],
        "name": "s",
        "endpoints": ["https://recog.example.org"],
    }

    r = api.post(SERVICES, json={**body, "max_concurrency": 9}, headers=key)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_input")
    assert "RECOGHUB_SERVICE_CONCURRENCY_MAX" in r.json()["detail"]
    r = api.post(SERVICES, json={**body, "max_concurrency": 8}, headers=key)
    assert r.status_code == 201, r.text
    guid = r.json()["guid"]

    r = api.patch(f"{SERVICES}/{guid}", json={"max_concurrency": 64}, headers=key)
    assert r.status_code == 422
    assert "RECOGHUB_SERVICE_CONCURRENCY_MAX" in r.json()["detail"]
    assert api.get(f"{SERVICES}/{guid}", headers=key).json()["max_concurrency"] == 8

    r = api.patch(f"{SERVICES}/{guid}", json={"max_concurrency": 64}, headers=admin_headers())
    assert (r.status_code, r.json()["max_concurrency"]) == (200, 64)
    # What the organizer set the provider may keep (sending it back) or lower, not raise.
    for value, status in ((64, 200), (32, 200), (48, 422), (4, 200)):
        r = api.patch(f"{SERVICES}/{guid}", json={"max_concurrency": value}, headers=key)
        assert r.status_code == status, (value, r.text)
    r = api.post(
        SERVICES, json={**body, "name": "s2", "max_concurrency": 200}, headers=admin_headers()
    )
    assert (r.status_code, r.json()["max_concurrency"]) == (201, 200)

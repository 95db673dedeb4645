"""The commonest mistake of the original hub: a provider GUID where a service GUID belongs,
or the reverse. Each gets 404 `wrong_guid_kind` saying exactly that."""

import uuid

import httpx

from tests.builders import admin_headers, bearer, register_team


def test_a_provider_guid_on_service_routes_is_named_as_such(api: httpx.Client) -> None:
    team = register_team(api, ["http://127.0.0.1:9"])
    url = f"/api/v1/services/{team.provider_guid}"
    expected = {
        "detail": f"{team.provider_guid} is a provider GUID, not a service GUID",
        "code": "wrong_guid_kind",
    }

    for headers in (admin_headers(), bearer(team.api_key)):
        for r in (
            api.get(url, headers=headers),
            api.patch(url, json={"enabled": False}, headers=headers),
            api.delete(url, headers=headers),
        ):
            assert r.status_code == 404
            assert r.json() == expected
    assert api.get(f"/api/v1/providers/{team.provider_guid}", headers=admin_headers()).is_success


def test_a_service_guid_where_a_provider_belongs_is_named_as_such(api: httpx.Client) -> None:
    team = register_team(api, ["http://127.0.0.1:9"])
    expected = {
        "detail": f"{team.service_guid} is a service GUID, not a provider GUID",
        "code": "wrong_guid_kind",
    }
    body = {"provider_guid": team.service_guid, "name": "svc", "endpoints": ["http://a:1"]}

    for headers in (admin_headers(), bearer(team.api_key)):
        got = api.get(f"/api/v1/providers/{team.service_guid}", headers=headers)
        created = api.post("/api/v1/services", json=body, headers=headers)
        listed = api.get(
            "/api/v1/services", params={"provider": team.service_guid}, headers=headers
        )
        for r in (got, created, listed):
            assert r.status_code == 404
            assert r.json() == expected
    assert len(api.get("/api/v1/services", headers=admin_headers()).json()) == 1


def test_unknown_guids_say_which_kind_was_expected(api: httpx.Client) -> None:
    team = register_team(api, ["http://127.0.0.1:9"])
    missing = str(uuid.uuid4())

    service = api.get(f"/api/v1/services/{missing}", headers=admin_headers())
    provider = api.get(f"/api/v1/providers/{missing}", headers=admin_headers())
    owner = api.post(
        "/api/v1/services",
        json={"provider_guid": missing, "name": "svc", "endpoints": ["http://a:1"]},
        headers=admin_headers(),
    )
    garbled = api.get("/api/v1/services/not-a-guid", headers=bearer(team.api_key))

    for r in (service, provider, owner, garbled):
        assert r.status_code == 404
        assert r.json()["code"] == "not_found"
    assert service.json()["detail"] == f"no service with GUID {missing}"
    assert provider.json()["detail"] == owner.json()["detail"] == f"no provider with GUID {missing}"
    assert garbled.json()["detail"] == (
        "no service with GUID not-a-guid (and that is not a well-formed GUID)"
    )


def test_guids_match_whatever_their_letter_case(api: httpx.Client) -> None:
    team = register_team(api, ["http://127.0.0.1:9"])

    r = api.get(f"/api/v1/services/{team.service_guid.upper()}", headers=admin_headers())
    mixed = api.get(f"/api/v1/services/{team.provider_guid.upper()}", headers=admin_headers())

    assert r.status_code == 200
    assert r.json()["guid"] == team.service_guid
    assert mixed.json()["code"] == "wrong_guid_kind"

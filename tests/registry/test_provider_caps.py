"""A provider's share as a team (SPEC §9): the total max_concurrency over its services is
capped by RECOGHUB_PROVIDER_CONCURRENCY_MAX (default 32) and its number of services by
RECOGHUB_PROVIDER_SERVICES_MAX (default 10); the organizer may set more (issue 17, 5)."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.builders import admin_headers, bearer

SERVICES = "/api/v1/services"


def _team(api: httpx.Client, name: str) -> tuple[str, dict[str, str]]:
    r = api.post("/api/v1/providers", json={"name": name}, headers=admin_headers())
    assert r.status_code == 201, r.text
    return r.json()["guid"], bearer(r.json()["api_key"])


def _service(provider_guid: str, name: str, concurrency: int) -> dict[str, Any]:
    return {
        "provider_guid": provider_guid,
        "name": name,
        "endpoints": ["https://recog.example.org"],
        "max_concurrency": concurrency,
    }


def _total(api: httpx.Client, provider_guid: str) -> tuple[int, int]:
    rows = api.get(SERVICES, params={"provider": provider_guid}, headers=admin_headers()).json()
    return len(rows), sum(row["max_concurrency"] for row in rows)


def test_forty_services_at_eight_are_refused_past_the_team_cap(api: httpx.Client) -> None:
    guid, key = _team(api, "greedy")
    answers = [api.post(SERVICES, json=_service(guid, f"s{i}", 8), headers=key) for i in range(40)]

    assert [r.status_code for r in answers[:4]] == [201] * 4
    assert {r.status_code for r in answers[4:]} == {422}
    refusal = answers[4].json()
    assert refusal["code"] == "provider_concurrency_max"
    assert "RECOGHUB_PROVIDER_CONCURRENCY_MAX" in refusal["detail"]
    assert "now total 32" in refusal["detail"]
    assert _total(api, guid) == (4, 32)

    # Raising one is refused too; keeping or lowering it is not.
    first = answers[0].json()["guid"]
    r = api.patch(f"{SERVICES}/{first}", json={"max_concurrency": 9}, headers=key)
    assert r.status_code == 422  # the per-service cap speaks first
    r = api.patch(f"{SERVICES}/{first}", json={"max_concurrency": 2}, headers=key)
    assert r.status_code == 200, r.text
    r = api.patch(f"{SERVICES}/{first}", json={"max_concurrency": 3}, headers=key)
    assert r.status_code == 200, r.text  # 24 + 3 = 27
    r = api.post(SERVICES, json=_service(guid, "s-five", 5), headers=key)
    assert r.status_code == 201, r.text  # 27 + 5 = 32
    r = api.patch(f"{SERVICES}/{first}", json={"max_concurrency": 4}, headers=key)
    assert (r.status_code, r.json()["code"]) == (422, "provider_concurrency_max")
    assert "to 33" in r.json()["detail"]
    assert _total(api, guid) == (5, 32)


def test_the_number_of_services_is_capped(api: httpx.Client) -> None:
    guid, key = _team(api, "many")
    answers = [api.post(SERVICES, json=_service(guid, f"s{i}", 1), headers=key) for i in range(12)]

    assert [r.status_code for r in answers] == [201] * 10 + [409] * 2
    refusal = answers[10].json()
    assert refusal["code"] == "provider_services_max"
    assert "RECOGHUB_PROVIDER_SERVICES_MAX=10" in refusal["detail"]
    assert "has 10 services" in refusal["detail"]
    # A deleted service frees its place.
    assert api.delete(f"{SERVICES}/{answers[0].json()['guid']}", headers=key).status_code == 204
    r = api.post(SERVICES, json=_service(guid, "again", 1), headers=key)
    assert r.status_code == 201, r.text


def test_the_organizer_may_set_more(api: httpx.Client) -> None:
    guid, key = _team(api, "trusted")
    for i in range(12):
        r = api.post(SERVICES, json=_service(guid, f"s{i}", 8), headers=admin_headers())
        assert r.status_code == 201, r.text
    assert _total(api, guid) == (12, 96)
    # The team may keep and lower what the organizer gave it, not add to it.
    services = api.get(SERVICES, headers=key).json()
    r = api.patch(f"{SERVICES}/{services[0]['guid']}", json={"max_concurrency": 8}, headers=key)
    assert r.status_code == 200, r.text
    r = api.patch(f"{SERVICES}/{services[0]['guid']}", json={"max_concurrency": 4}, headers=key)
    assert r.status_code == 200, r.text
    r = api.patch(f"{SERVICES}/{services[0]['guid']}", json={"max_concurrency": 5}, headers=key)
    assert r.status_code == 422
    r = api.post(SERVICES, json=_service(guid, "more", 1), headers=key)
    assert r.status_code == 409


def test_parallel_requests_cannot_both_pass_the_sum(api: httpx.Client) -> None:
    guid, key = _team(api, "racer")

    def create(i: int) -> int:
        return api.post(SERVICES, json=_service(guid, f"p{i}", 8), headers=key).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(create, range(8)))

    assert statuses == [201] * 4 + [422] * 4
    assert _total(api, guid) == (4, 32)

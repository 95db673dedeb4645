"""Who sees which runs, leaderboards and results: organizer, own team, another team, and
anyone, for dry runs and evaluations, published or not. Truth never leaves the hub."""

from pathlib import Path

import httpx

from tests.builders import ADMIN_TOKEN, admin_headers, bearer
from tests.runs.api_builders import (
    CAT_DOG,
    LABELS,
    RESULT_KEYS,
    parse_jsonl,
    recognizers,
    results_of,
    seed_dataset,
    two_runs_of_three_teams,
)
from tests.servers import LiveServer


def headers_for(token: str | None) -> dict[str, str]:
    return bearer(token) if token else {}


def test_access_matrix(hub: LiveServer, database_url: str, tmp_path: Path) -> None:
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
    with recognizers(CAT_DOG, "cat:0.5") as (ra, rb), httpx.Client(base_url=hub.url) as c:
        alpha, beta, gamma, dry, ev = two_runs_of_three_teams(c, dataset_id, ra.url, rb.url)
        both = [alpha.service_guid, beta.service_guid]

        def status(path: str, token: str | None) -> int:
            return c.get(path, headers=headers_for(token)).status_code

        def board(run_id: int, token: str | None) -> httpx.Response:
            return c.get(f"/api/v1/runs/{run_id}/leaderboard", headers=headers_for(token))

        def guids(r: httpx.Response) -> list[str]:
            assert r.status_code == 200, r.text
            return [row["service_guid"] for row in r.json()]

        # Runs: a provider sees the runs it takes part in, with only its own rows.
        assert status("/api/v1/runs", None) == 401
        listed = c.get("/api/v1/runs", headers=bearer(alpha.api_key)).json()
        assert sorted(r["id"] for r in listed) == sorted([dry, ev])
        for run in listed:
            assert [s["service_guid"] for s in run["services"]] == [alpha.service_guid]
        assert c.get("/api/v1/runs", headers=bearer(gamma.api_key)).json() == []
        own = c.get(f"/api/v1/runs/{ev}", headers=bearer(beta.api_key)).json()
        assert [s["service_guid"] for s in own["services"]] == [beta.service_guid]
        assert status(f"/api/v1/runs/{ev}", gamma.api_key) == 403
        assert status(f"/api/v1/runs/{ev}", None) == 401
        admin_view = c.get(f"/api/v1/runs/{ev}", headers=admin_headers()).json()
        assert len(admin_view["services"]) == 2

        # Only the organizer starts, cancels, resumes and publishes.
        for path in ("cancel", "resume", "publish"):
            assert status_post(c, f"/api/v1/runs/{dry}/{path}", alpha.api_key) == 403
            assert status_post(c, f"/api/v1/runs/{dry}/{path}", None) == 401

        # Dry-run leaderboard: the organizer sees all, each team its own row.
        assert guids(board(dry, ADMIN_TOKEN)) == both
        assert guids(board(dry, alpha.api_key)) == [alpha.service_guid]
        assert guids(board(dry, beta.api_key)) == [beta.service_guid]
        assert board(dry, gamma.api_key).status_code == 403
        assert board(dry, None).status_code == 401

        # Evaluation leaderboard: hidden from teams until published.
        assert guids(board(ev, ADMIN_TOKEN)) == both
        for token in (alpha.api_key, beta.api_key, gamma.api_key):
            r = board(ev, token)
            assert r.status_code == 403 and "not published" in r.json()["detail"]
        assert board(ev, None).status_code == 401
        c.post(f"/api/v1/runs/{ev}/publish", json={"published": True}, headers=admin_headers())
        for token in (alpha.api_key, gamma.api_key):
            assert guids(board(ev, token)) == both
        assert board(ev, None).status_code == 401
        c.post(f"/api/v1/runs/{ev}/publish", json={"published": False}, headers=admin_headers())
        assert board(ev, alpha.api_key).status_code == 403

        # Results: the organizer any service; a team its own, of dry runs only.
        assert results_of(c, dry, beta.service_guid).status_code == 200
        assert results_of(c, ev, beta.service_guid).status_code == 200
        assert results_of(c, dry, alpha.service_guid, token=alpha.api_key).status_code == 200
        r = results_of(c, dry, beta.service_guid, token=alpha.api_key)
        assert r.status_code == 403
        c.post(f"/api/v1/runs/{ev}/publish", json={"published": True}, headers=admin_headers())
        r = results_of(c, ev, alpha.service_guid, token=alpha.api_key)
        assert r.status_code == 403 and "hidden" in r.json()["detail"]
        r = c.get(f"/api/v1/runs/{dry}/results", params={"service": alpha.service_guid})
        assert r.status_code == 401
        r = results_of(c, dry, alpha.provider_guid)
        assert r.status_code == 404 and r.json()["code"] == "wrong_guid_kind"
        assert "provider GUID" in r.json()["detail"]
        r = results_of(c, dry, gamma.service_guid)
        assert r.status_code == 404, r.text

        # Truth never leaves: results carry the true tag's rank, never the tag itself.
        for fmt in ("jsonl", "csv"):
            body = results_of(c, dry, beta.service_guid, fmt).text
            assert "truth" not in body and "bird" not in body and "dog" not in body
        for line in parse_jsonl(results_of(c, dry, alpha.service_guid).text):
            assert set(line) == RESULT_KEYS
        for row in board(dry, ADMIN_TOKEN).json():
            assert "truth" not in row and "labels" not in row


def status_post(c: httpx.Client, path: str, token: str | None) -> int:
    return c.post(path, headers=headers_for(token)).status_code

"""Dry runs a team starts itself (SPEC §3): open datasets only, own services only, at most
RECOGHUB_TEAM_DRYRUNS_PER_DAY (3 by default) in any 24 hours, then 429 with Retry-After.
The organizer sees who started each run."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.builders import admin_headers, bearer, register_team
from tests.runs.api_builders import CAT_DOG, LABELS, recognizers, seed_dataset, wait_for
from tests.servers import LiveServer


def team_run(c: httpx.Client, key: str, **body: object) -> httpx.Response:
    return c.post("/api/v1/runs", json={"phase": "dryrun", **body}, headers=bearer(key))


def test_a_team_dry_run_within_its_quota(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    pets = seed_dataset(database_url, data_dir, LABELS, name="pets")
    closed = seed_dataset(database_url, data_dir, {"x": "cat"}, name="hidden")
    with recognizers(CAT_DOG, "cat:0.5") as (ra, rb), httpx.Client(base_url=hub.url) as c:
        alpha = register_team(c, [ra.url], name="alpha")
        beta = register_team(c, [rb.url], name="beta")
        r = c.patch(
            f"/api/v1/datasets/{pets}", json={"open_to_teams": True}, headers=admin_headers()
        )
        assert r.status_code == 200, r.text

        refused = team_run(c, alpha.api_key, dataset=closed)
        assert refused.status_code == 403
        assert "not open to team dry runs" in refused.json()["detail"]
        other = team_run(c, alpha.api_key, dataset="pets", services=[beta.service_guid])
        assert other.status_code == 403
        assert "belongs to another team" in other.json()["detail"]
        evaluation = team_run(c, alpha.api_key, dataset="pets", phase="evaluation")
        assert evaluation.status_code == 403
        assert team_run(c, alpha.api_key, dataset="pets", concurrency=50).status_code == 403
        assert team_run(c, alpha.api_key, dataset="nope").status_code == 404

        first = team_run(c, alpha.api_key, dataset="pets")
        assert first.status_code == 201, first.text
        run = first.json()
        assert run["started_by"] == alpha.provider_guid
        assert [s["service_guid"] for s in run["services"]] == [alpha.service_guid]
        done = wait_for(c, run["id"], {"completed"})
        assert done["started_by_name"] == "alpha"
        assert [s["status"] for s in done["services"]] == ["passed"]
        board = c.get(f"/api/v1/runs/{run['id']}/leaderboard", headers=bearer(alpha.api_key))
        assert board.status_code == 200
        assert [(row["top1"], row["top5"]) for row in board.json()] == [(0.5, 0.75)]
        assert c.get(f"/api/v1/runs/{run['id']}", headers=bearer(beta.api_key)).status_code == 403
        # The organizer's list names who started what.
        listed = c.get("/api/v1/runs", headers=admin_headers()).json()
        assert [(r["id"], r["started_by"]) for r in listed] == [(run["id"], alpha.provider_guid)]

        for _ in range(2):
            assert team_run(c, alpha.api_key, dataset=pets).status_code == 201
        before = datetime.now(UTC)
        fourth = team_run(c, alpha.api_key, dataset=pets)
        assert fourth.status_code == 429
        body = fourth.json()
        assert body["code"] == "quota_exceeded"
        # The first run leaves the 24-hour window first: that is when the next is allowed.
        assert 0 < int(fourth.headers["Retry-After"]) <= 24 * 3600
        next_at = datetime.fromisoformat(body["next_allowed_at"].replace("Z", "+00:00"))
        assert before + timedelta(hours=23) < next_at <= before + timedelta(hours=24)
        assert body["next_allowed_at"].endswith("Z")
        assert body["next_allowed_at"] in body["detail"]
        # The quota is per team, and the organizer has none.
        assert team_run(c, beta.api_key, dataset=pets).status_code == 201
        organizer = c.post(
            "/api/v1/runs",
            json={"dataset": pets, "phase": "dryrun", "services": [alpha.service_guid]},
            headers=admin_headers(),
        )
        assert organizer.status_code == 201 and organizer.json()["started_by"] is None

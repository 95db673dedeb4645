"""`/api/v1/challenges` (SPEC §12): who sees what, submissions, the phase leaderboard."""

from pathlib import Path

import httpx

from tests.builders import admin_headers, bearer, register_team
from tests.challenges.builders import API, board, create_challenge, phase_body, submit
from tests.runs.api_builders import CAT_DOG, LABELS, recognizers, seed_dataset, wait_for
from tests.servers import LiveServer


def test_teams_submit_and_see_the_live_leaderboard(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed_dataset(database_url, tmp_path / "data", LABELS, name="pets")
    with recognizers(CAT_DOG, "cat:0.9") as (ra, rb), httpx.Client(base_url=hub.url) as c:
        alpha = register_team(c, [ra.url], name="alpha")
        beta = register_team(c, [rb.url], name="beta")
        made = create_challenge(c, "pets-cup", phase_body(submission_limit={"total": 2}))
        assert made["phases"][0]["state"] == "open"
        assert made["phases"][0]["seed"] is not None

        seen = c.get(f"{API}/pets-cup", headers=bearer(alpha.api_key)).json()
        assert seen["enrolled"] is True and seen["phases"][0]["seed"] is None
        assert c.get(f"{API}/pets-cup").status_code == 404  # not public

        other = submit(c, alpha.api_key, beta.service_guid)
        assert other.status_code == 403, other.text
        first = submit(c, alpha.api_key, alpha.service_guid)
        assert first.status_code == 201, first.text
        b = submit(c, beta.api_key, beta.service_guid)
        assert b.status_code == 201, b.text
        wait_for(c, first.json()["run_id"], {"completed"})
        wait_for(c, b.json()["run_id"], {"completed"})

        rows = board(c, alpha.api_key).json()["rows"]
        assert [(r["provider_name"], r["rank"]) for r in rows] == [("alpha", 1), ("beta", 2)]
        assert rows[0]["scores"]["top5"] == 0.75 and rows[0]["submissions_left"] == 1
        mine = c.get(f"{API}/pets-cup/phases/final/submissions", headers=bearer(alpha.api_key))
        assert [s["provider_name"] for s in mine.json()] == ["alpha"]
        everyone = c.get(f"{API}/pets-cup/phases/final/submissions", headers=admin_headers())
        assert len(everyone.json()) == 2
        csv = board(c, beta.api_key, format="csv")
        assert csv.status_code == 200 and csv.text.splitlines()[0].startswith("rank,baseline")


def test_an_at_close_phase_shows_teams_no_score_until_published(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed_dataset(database_url, tmp_path / "data", LABELS, name="pets")
    with recognizers(CAT_DOG) as (ra,), httpx.Client(base_url=hub.url) as c:
        alpha = register_team(c, [ra.url], name="alpha")
        create_challenge(c, "pets-cup", phase_body(visible="at_close", dry_run=True), public=True)
        made = submit(c, alpha.api_key, alpha.service_guid)
        assert made.status_code == 201, made.text
        run_id = made.json()["run_id"]
        wait_for(c, run_id, {"completed"})

        hidden = board(c, alpha.api_key)
        assert hidden.status_code == 403 and "at close" in hidden.json()["detail"]
        assert board(c, "").status_code == 403
        mine = c.get(
            f"{API}/pets-cup/phases/final/submissions/{made.json()['id']}",
            headers=bearer(alpha.api_key),
        ).json()
        assert mine["scores"] is None and mine["images_done"] == len(LABELS)
        # Not through the run either, though it is a dry run of the team's own service.
        for view in (
            f"/api/v1/runs/{run_id}/leaderboard",
            f"/api/v1/runs/{run_id}/results?service={alpha.service_guid}",
            f"/api/v1/runs/{run_id}/failures",
        ):
            assert c.get(view, headers=bearer(alpha.api_key)).status_code == 403, view
        assert board(c, None).json()["rows"][0]["scores"]["top5"] == 0.75  # the organizer

        assert c.post(f"{API}/pets-cup/phases/final/close", headers=admin_headers()).is_success
        assert c.post(f"{API}/pets-cup/phases/final/publish", headers=admin_headers()).is_success
        shown = board(c, alpha.api_key).json()
        assert shown["final"] is True and shown["rows"][0]["scores"]["top5"] == 0.75
        assert board(c, "").json()["rows"][0]["provider_name"] == "alpha"
        results = c.get(
            f"/api/v1/runs/{run_id}/results?service={alpha.service_guid}",
            headers=bearer(alpha.api_key),
        )
        assert results.status_code == 200 and len(results.text.splitlines()) == len(LABELS)


def test_enrolment_and_the_organizers_run_of_every_enrolled_service(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed_dataset(database_url, tmp_path / "data", LABELS, name="pets")
    with (
        recognizers(CAT_DOG, CAT_DOG, "cat:0.9") as (ra, rb, rc),
        httpx.Client(base_url=hub.url) as c,
    ):
        alpha = register_team(c, [ra.url], name="alpha")
        outsider = register_team(c, [rb.url], name="outsider")
        organizer = register_team(c, [rc.url], name="organizer")
        create_challenge(
            c,
            "pets-cup",
            phase_body(submission_limit={"total": 1}, baselines=[organizer.service_guid]),
            providers=["alpha"],
        )
        assert c.get(f"{API}/pets-cup", headers=bearer(outsider.api_key)).status_code == 404
        assert submit(c, outsider.api_key, outsider.service_guid).status_code == 404

        everyone = c.post(f"{API}/pets-cup/phases/final/submissions/all", headers=admin_headers())
        assert everyone.status_code == 201, everyone.text
        made = everyone.json()
        assert sorted(s["provider_name"] for s in made) == ["alpha", "organizer"]
        assert len({s["run_id"] for s in made}) == 1  # one run of them all
        wait_for(c, made[0]["run_id"], {"completed"})
        # The organizer's submission counts against alpha's limit.
        again = submit(c, alpha.api_key, alpha.service_guid)
        assert again.status_code == 429 and again.json()["next_allowed_at"] is None
        rows = board(c, alpha.api_key).json()["rows"]
        assert [(r["provider_name"], r["rank"], r["baseline"]) for r in rows] == [
            ("alpha", 1, False),
            ("organizer", None, True),
        ]
        assert rows[0]["submissions"] == 1 and rows[0]["submissions_left"] == 0

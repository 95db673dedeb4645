"""Which submission counts (SPEC §12): best, last or selected; ties go to the earlier
submission; baselines are shown, never ranked."""

from pathlib import Path
from typing import Any

import httpx

from tests.builders import admin_headers, bearer, register_team
from tests.challenges.builders import API, board, create_challenge, phase_body, submit
from tests.runs.api_builders import CAT_DOG, LABELS, recognizers, seed_dataset, wait_for
from tests.servers import LiveServer

# On LABELS (cat, cat, dog, bird): CAT_DOG has top-5 0.75, BIRD 0.25.
BIRD = "bird:0.9"


def add_service(c: httpx.Client, provider_guid: str, url: str, name: str) -> str:
    r = c.post(
        "/api/v1/services",
        json={"provider_guid": provider_guid, "name": name, "endpoints": [url]},
        headers=admin_headers(),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["guid"])


def made(c: httpx.Client, key: str | None, service: str, phase: str) -> dict[str, Any]:
    r = submit(c, key, service, phase=phase)
    assert r.status_code == 201, r.text
    wait_for(c, r.json()["run_id"], {"completed"})
    return dict(r.json())


def row_of(c: httpx.Client, phase: str, provider_name: str) -> dict[str, Any]:
    rows = board(c, None, phase=phase).json()["rows"]
    return next(r for r in rows if r["provider_name"] == provider_name and not r["baseline"])


def test_best_last_and_selected_count_and_ties_go_to_the_earlier(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed_dataset(database_url, tmp_path / "data", LABELS, name="pets")
    with (
        recognizers(CAT_DOG, BIRD, CAT_DOG, "dog:0.9") as (good, bad, same, base),
        httpx.Client(base_url=hub.url, timeout=60) as c,
    ):
        alpha = register_team(c, [good.url], name="alpha")
        alpha_bad = add_service(c, alpha.provider_guid, bad.url, "alpha-bad")
        beta = register_team(c, [same.url], name="beta")
        organizer = register_team(c, [base.url], name="organizer")
        create_challenge(
            c,
            "pets-cup",
            phase_body("best", baselines=[organizer.service_guid]),
            phase_body("last", counts="last"),
            phase_body("selected", counts="selected", selection_limit=1),
        )
        # best: alpha's good one counts; beta ties on every figure but came later.
        first = made(c, alpha.api_key, alpha.service_guid, "best")
        made(c, alpha.api_key, alpha_bad, "best")
        made(c, beta.api_key, beta.service_guid, "best")
        made(c, None, organizer.service_guid, "best")
        rows = board(c, None, phase="best").json()["rows"]
        assert [(r["provider_name"], r["rank"], r["baseline"]) for r in rows] == [
            ("alpha", 1, False),
            ("beta", 2, False),
            ("organizer", None, True),  # 0.25: below both, shown, not ranked
        ]
        assert rows[0]["submission_id"] == first["id"] and rows[0]["submissions"] == 2
        assert rows[0]["scores"]["top5"] == 0.75 and rows[2]["scores"]["top5"] == 0.25

        # last: the latest counts, even when worse.
        made(c, alpha.api_key, alpha.service_guid, "last")
        latest = made(c, alpha.api_key, alpha_bad, "last")
        row = row_of(c, "last", "alpha")
        assert row["submission_id"] == latest["id"] and row["scores"]["top5"] == 0.25

        # selected: the best when none is selected, else the selected one, up to the limit.
        good_one = made(c, alpha.api_key, alpha.service_guid, "selected")
        bad_one = made(c, alpha.api_key, alpha_bad, "selected")
        assert row_of(c, "selected", "alpha")["submission_id"] == good_one["id"]
        path = f"{API}/pets-cup/phases/selected/submissions"
        picked = c.post(f"{path}/{bad_one['id']}/select", headers=bearer(alpha.api_key))
        assert picked.status_code == 200 and picked.json()["selected"] is True, picked.text
        assert row_of(c, "selected", "alpha")["submission_id"] == bad_one["id"]
        over = c.post(f"{path}/{good_one['id']}/select", headers=bearer(alpha.api_key))
        assert over.status_code == 409 and "selection_limit 1" in over.json()["detail"]
        # Another team cannot touch it; a phase counting best has nothing to select.
        assert (
            c.post(f"{path}/{bad_one['id']}/select", headers=bearer(beta.api_key)).status_code
            == 404
        )
        best_path = f"{API}/pets-cup/phases/best/submissions/{first['id']}/select"
        assert c.post(best_path, headers=bearer(alpha.api_key)).status_code == 409
        # beta made none here: a row all the same, unranked, with nothing counted.
        beta_row = row_of(c, "selected", "beta")
        assert beta_row["rank"] is None and beta_row["submissions"] == 0

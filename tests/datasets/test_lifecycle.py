"""Datasets after import: rename, open to team dry runs, delete (SPEC §3), on a live hub.

A dataset a run uses cannot be deleted; deleting one removes its rows and the image
files no other dataset shares.
"""

from pathlib import Path

import httpx

from tests.builders import admin_headers, bearer, register_team
from tests.datasets.sources import clickture_lines, write_lines
from tests.runs.api_builders import recognizers, start_run, wait_for
from tests.servers import LiveServer

API = "/api/v1/datasets"


def import_clickture(c: httpx.Client, tmp_path: Path, name: str, count: int) -> dict[str, object]:
    source = write_lines(tmp_path / f"{name}.tsv", clickture_lines(count))
    r = c.post(API, json={"name": name, "format": "clickture", "path": str(source)})
    assert r.status_code == 201, r.text
    created: dict[str, object] = r.json()
    return created


def stored_files(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "images").rglob("*") if p.is_file()}


def test_rename_open_close_and_who_may(hub: LiveServer, tmp_path: Path) -> None:
    with httpx.Client(base_url=hub.url, headers=admin_headers(), timeout=30) as c:
        dogs = import_clickture(c, tmp_path, "dogs", 3)
        cats = import_clickture(c, tmp_path, "cats", 2)
        one = f"{API}/{dogs['id']}"

        renamed = c.patch(one, json={"name": "dogs-dev"})
        assert renamed.status_code == 200, renamed.text
        assert (renamed.json()["name"], renamed.json()["open_to_teams"]) == ("dogs-dev", False)
        taken = c.patch(one, json={"name": "cats"})
        assert taken.status_code == 409
        assert "cats" in taken.json()["detail"]
        assert c.patch(one, json={"name": ""}).status_code == 422
        assert c.patch(f"{API}/{int(str(cats['id'])) + 100}", json={"name": "x"}).status_code == 404

        team = register_team(c, ["http://127.0.0.1:9"], name="alpha")
        as_team = bearer(team.api_key)
        assert c.get(API, headers=as_team).json() == []
        opened = c.patch(one, json={"open_to_teams": True})
        assert opened.json()["open_to_teams"] is True
        # A team sees the open dataset by id, name and size, never its labels or format.
        assert c.get(API, headers=as_team).json() == [
            {"id": dogs["id"], "name": "dogs-dev", "kind": "classification", "images": 3}
        ]
        assert c.get(one, headers=as_team).status_code == 403
        assert c.patch(one, json={"name": "mine"}, headers=as_team).status_code == 403
        assert c.delete(one, headers=as_team).status_code == 403
        assert c.patch(one, json={"name": "x"}, headers={"Authorization": ""}).status_code == 401
        c.patch(one, json={"open_to_teams": False})
        assert c.get(API, headers=as_team).json() == []
        assert [d["name"] for d in c.get(API).json()] == ["dogs-dev", "cats"]


def test_delete_refuses_a_dataset_in_use_and_keeps_shared_files(
    hub: LiveServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"  # the hub fixture's data dir
    with (
        recognizers("beagle:0.9") as (rec,),
        httpx.Client(base_url=hub.url, headers=admin_headers(), timeout=30) as c,
    ):
        used = import_clickture(c, tmp_path, "used", 2)
        small = import_clickture(c, tmp_path, "small", 3)  # shares images 0 and 1 with "used"
        big = import_clickture(c, tmp_path, "big", 5)  # images 3 and 4 are its own
        team = register_team(c, [rec.url])
        runs = [
            start_run(c, used["id"], "dryrun", services=[team.service_guid])["id"] for _ in range(2)
        ]
        for run_id in runs:
            wait_for(c, run_id, {"completed"})

        refused = c.delete(f"{API}/{used['id']}")
        assert refused.status_code == 409
        assert refused.json()["detail"].startswith(
            f"dataset {used['id']} is used by runs {runs[0]}, {runs[1]}"
        )

        before = stored_files(data_dir)
        assert len(before) == 5
        assert c.delete(f"{API}/{big['id']}").status_code == 204
        # Only the two files no other dataset has are gone.
        assert len(stored_files(data_dir)) == 3 and stored_files(data_dir) < before
        assert c.delete(f"{API}/{small['id']}").status_code == 204
        assert len(stored_files(data_dir)) == 2  # "used" still needs them
        assert c.delete(f"{API}/{small['id']}").status_code == 404
        assert [d["name"] for d in c.get(API).json()] == ["used"]
        # The runs on "used" still read their results.
        board = c.get(f"/api/v1/runs/{runs[0]}/leaderboard")
        assert board.status_code == 200 and board.json()[0]["images"] == 2
        # The name of a deleted dataset is free again.
        assert import_clickture(c, tmp_path, "big", 1)["name"] == "big"

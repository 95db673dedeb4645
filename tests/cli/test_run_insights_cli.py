"""`recoghub run failures|classes|timeline`, `run results` of a whole run and `run
leaderboard --format csv` against a live hub: what they print matches the API."""

import csv
import io
import json
import os
from pathlib import Path

import httpx

from tests.builders import admin_headers, register_team
from tests.cli.test_run_cli import recoghub
from tests.runs.api_builders import (
    CAT_DOG,
    LABELS,
    parse_jsonl,
    recognizers,
    seed_dataset,
    wait_for,
)
from tests.runs.api_builders import start_run as api_start_run
from tests.servers import LiveServer


def test_failures_classes_timeline_and_exports(
    sqlite_hub: LiveServer, sqlite_url: str, tmp_path: Path
) -> None:
    assert int(os.environ.get("COLUMNS", "80")) == 80  # rich's width under CliRunner
    dataset_id = seed_dataset(sqlite_url, tmp_path / "data", LABELS)
    with (
        recognizers(CAT_DOG, error_status_rate=0.5, seed=11) as (rec,),
        httpx.Client(base_url=sqlite_hub.url) as c,
    ):
        team = register_team(c, [rec.url], name="a-team-with-a-rather-long-name")
        run = api_start_run(c, dataset_id, "dryrun", services=[team.service_guid], max_attempts=1)
        run_id = str(wait_for(c, run["id"], {"completed"})["id"])
        groups = c.get(f"/api/v1/runs/{run_id}/failures", headers=admin_headers()).json()
        assert groups, "seed 11 fails some requests"

        code, out = recoghub(sqlite_hub, "failures", run_id, "--json")
        assert code == 0 and json.loads(out) == groups
        code, out = recoghub(sqlite_hub, "failures", run_id)
        assert code == 0, out
        assert max(len(line) for line in out.splitlines()) <= 80, out
        for g in groups:
            assert str(g["count"]) in out and g["request_ids"][0] in out.replace("\n", "")

        code, out = recoghub(sqlite_hub, "classes", run_id, "--service", team.service_guid)
        assert code == 0, out
        assert max(len(line) for line in out.splitlines()) <= 80, out
        assert all(label in out for label in set(LABELS.values()))
        code, out = recoghub(
            sqlite_hub, "classes", run_id, "--service", team.service_guid, "--json"
        )
        assert code == 0
        api = c.get(
            f"/api/v1/runs/{run_id}/services/{team.service_guid}/classes", headers=admin_headers()
        )
        assert json.loads(out) == api.json()

        code, out = recoghub(sqlite_hub, "timeline", run_id, "--bucket", "3600", "--format", "json")
        assert code == 0
        (svc,) = json.loads(out)["services"]
        assert sum(b["done"] for b in svc["buckets"]) == len(LABELS)
        code, out = recoghub(sqlite_hub, "timeline", run_id, "--bucket", "3600")
        assert code == 0 and max(len(line) for line in out.splitlines()) <= 80, out

        code, out = recoghub(sqlite_hub, "leaderboard", run_id, "--format", "csv")
        assert code == 0
        assert (
            out
            == c.get(
                f"/api/v1/runs/{run_id}/leaderboard",
                params={"format": "csv"},
                headers=admin_headers(),
            ).text
        )
        (row,) = csv.DictReader(io.StringIO(out))
        assert row["service_guid"] == team.service_guid

        exported = tmp_path / "all.jsonl"
        code, out = recoghub(sqlite_hub, "results", run_id, "--output", str(exported))
        assert code == 0, out
        rows = parse_jsonl(exported.read_text(encoding="utf-8"))
        assert sorted(r["key"] for r in rows) == sorted(LABELS)
        assert all(r["labels"] == [LABELS[r["key"]]] for r in rows)
        assert {r["service_guid"] for r in rows} == {team.service_guid}

        # A team gets the hub's refusal as one clear line.
        code, out = recoghub(sqlite_hub, "results", run_id, token=team.api_key)
        assert code == 1 and "403" in out and "organizer" in out

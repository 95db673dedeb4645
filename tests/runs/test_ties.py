"""Ties said plainly (issue 20) through a live hub: two teams with the same top-5 share a
rank while their p50s are within the run's recorded timing uncertainty, and the board
(JSON and CSV) names its ranking metric and its tie-breaker."""

import csv
import io
from pathlib import Path

import httpx
from sqlalchemy import update

from gateway.db import make_engine
from gateway.runs.models import Run
from tests.builders import admin_headers, register_team
from tests.runs.api_builders import CAT_DOG, LABELS, recognizers, seed_dataset, start_run, wait_for
from tests.servers import LiveServer


def set_uncertainty(database_url: str, run_id: int, ms: float) -> None:
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(update(Run).where(Run.id == run_id).values(timing_uncertainty_ms=ms))
    engine.dispose()


def test_equal_teams_share_a_rank_within_the_uncertainty_and_the_board_says_why(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
    with recognizers(CAT_DOG, CAT_DOG) as (one, two), httpx.Client(base_url=hub.url) as c:
        a = register_team(c, [one.url], name="alpha")
        b = register_team(c, [two.url], name="beta")
        run = start_run(c, dataset_id, "dryrun", services=[a.service_guid, b.service_guid])
        wait_for(c, run["id"], {"completed"})
        path = f"/api/v1/runs/{run['id']}/leaderboard"

        # Far more uncertainty than any gap of their p50s: one shared first place.
        set_uncertainty(database_url, run["id"], 1e6)
        rows = c.get(path, headers=admin_headers()).json()
        table = c.get(path, params={"format": "csv"}, headers=admin_headers()).text
        # None at all: whatever p50 is lower ranks first (unless they are equal).
        set_uncertainty(database_url, run["id"], 0.0)
        strict = c.get(path, headers=admin_headers()).json()

    assert rows[0]["top5"] == rows[1]["top5"] == 0.75
    assert [r["rank"] for r in rows] == [1, 1]
    assert {(r["ranked_by"], r["tie_breaker"]) for r in rows} == {("top5", "latency_p50")}
    lines = list(csv.DictReader(io.StringIO(table)))
    assert [(r["rank"], r["ranked_by"], r["tie_breaker"]) for r in lines] == [
        ("1", "top5", "latency_p50"),
        ("1", "top5", "latency_p50"),
    ]
    p50s = [r["latency_ms"]["p50"] for r in strict]
    assert [r["rank"] for r in strict] == ([1, 1] if p50s[0] == p50s[1] else [1, 2])
    assert p50s == sorted(p50s)

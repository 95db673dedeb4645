"""Dial-out recognizers in runs (SPEC §10): served exactly like HTTP endpoints."""

from pathlib import Path

import httpx
import pytest

from gateway.db import make_engine
from tests.builders import admin_headers, register_team
from tests.dialout.support import dialout_recognizer
from tests.runs.api_builders import (
    CAT_DOG,
    LABELS,
    parse_jsonl,
    recognizers,
    results_of,
    seed_dataset,
    start_run,
    wait_for,
)
from tests.runs.builders import work_items
from tests.servers import LiveServer

SCORES = ("images", "top1", "top5", "coverage_at_95", "coverage_at_99", "micro_ap", "outcomes")


def test_a_dry_run_scores_a_connected_team_like_an_http_team(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
    with recognizers(CAT_DOG) as (http_recognizer,), httpx.Client(base_url=hub.url) as c:
        behind_firewall = register_team(c, [], name="firewalled")
        over_http = register_team(c, [http_recognizer.url], name="open")
        with dialout_recognizer(hub.url, behind_firewall, tmp_path, "--answer", CAT_DOG):
            run = start_run(
                c,
                dataset_id,
                "dryrun",
                services=[behind_firewall.service_guid, over_http.service_guid],
            )
            done = wait_for(c, run["id"], {"completed"})
        for service in done["services"]:
            assert service["status"] == "passed", service
            assert (service["done"], service["total"]) == (4, 4)
            assert service["outcomes"]["ok"] == 4 and sum(service["outcomes"].values()) == 4

        rows = c.get(f"/api/v1/runs/{run['id']}/leaderboard", headers=admin_headers()).json()
        by_service = {row["service_guid"]: row for row in rows}
        connected, http = (
            by_service[behind_firewall.service_guid],
            by_service[over_http.service_guid],
        )
        assert {k: connected[k] for k in SCORES} == {k: http[k] for k in SCORES}
        assert connected["top1"] == pytest.approx(0.5) and connected["top5"] == pytest.approx(0.75)
        assert connected["latency_ms"]["p50"] is not None

        lines = parse_jsonl(results_of(c, run["id"], behind_firewall.service_guid).text)
        assert sorted(line["key"] for line in lines) == sorted(LABELS)
        assert all(line["outcome"] == "ok" and line["raw"] == CAT_DOG for line in lines)

    engine = make_engine(database_url)
    try:
        items = work_items(engine, run["id"])
    finally:
        engine.dispose()
    assert len(items) == 8 and all(item.state == "done" for item in items)
    instances = {a["instance"].split(":")[0] for item in items for a in item.attempt_log}
    assert instances == {"dialout", "http"}

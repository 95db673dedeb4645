"""One team flooding its dial-out connection cannot stall another team's run (SPEC §10,
issue 17). Structural facts only: how much of the flood the hub read, and that the other
team's run went through in one attempt per image. The throughput and latency beside an
undisturbed run are benchmarks/bench_flood.py's."""

from pathlib import Path

import httpx

from gateway.app import create_app
from gateway.dialout import frames
from tests.builders import admin_headers, hub_settings, register_team
from tests.dialout.flooder import Flooder
from tests.dialout.support import dialout_recognizer, hub_logs
from tests.runs.api_builders import (
    parse_jsonl,
    poll_until,
    results_of,
    seed_dataset,
    start_run,
    wait_for,
)
from tests.servers import live_server

IMAGES = 60
ANSWER = "cat:0.9;dog:0.5"
CONNECT_BURST = 3
STRAYS = 16


def test_a_flooding_team_beside_a_dry_run(database_url: str, tmp_path: Path) -> None:
    labels = {f"img-{n:03d}": ("cat", "dog")[n % 2] for n in range(IMAGES)}
    # Upgrades per key: a burst of 3, then (for this test's length) none.
    settings = hub_settings(
        database_url,
        tmp_path / "data",
        connect_rate=0.001,
        connect_burst=CONNECT_BURST,
        dialout_stray_results=STRAYS,
    )
    with (
        live_server(create_app(settings)) as hub,
        httpx.Client(base_url=hub.url, timeout=30) as c,
        hub_logs() as records,
    ):
        dataset_id = seed_dataset(database_url, tmp_path / "data", labels)  # once migrated
        normal = register_team(c, [], name="normal")
        flooder_team = register_team(c, [], name="flooder")
        with (
            dialout_recognizer(hub.url, normal, tmp_path, "--answer", ANSWER),
            Flooder(hub.url, flooder_team.api_key, flooder_team.service_guid, max_s=90) as flood,
        ):
            # The run starts once the flood has had a connection closed, and goes on
            # beside its reconnects.
            poll_until(lambda: sum(flood.closes.values()) >= 1, "a flood connection closed")
            run = start_run(c, dataset_id, "dryrun", services=[normal.service_guid])
            done = wait_for(c, run["id"], {"completed", "failed"}, timeout=90)
            flood.stop()
            lines = parse_jsonl(results_of(c, run["id"], normal.service_guid).text)
        progress = c.get(f"/api/v1/runs/{run['id']}", headers=admin_headers()).json()

    (service,) = done["services"]
    assert done["state"] == "completed" and service["status"] == "passed", done
    assert service["outcomes"] == {**dict.fromkeys(service["outcomes"], 0), "ok": IMAGES}
    assert len(lines) == IMAGES
    assert all(line["outcome"] == "ok" and line["attempts"] == 1 for line in lines)
    assert progress["state"] == "completed"

    # The flood was refused at the door once its burst of upgrades was spent ...
    assert 1 <= flood.welcomed <= CONNECT_BURST
    assert flood.refused[429] >= 1
    # ... and each connection it got was closed after STRAYS + 1 of its results.
    assert flood.closes[frames.POLICY_VIOLATION] == flood.welcomed
    closed = [r.getMessage() for r in records if "were already answered" in r.getMessage()]
    assert len(closed) == flood.welcomed
    assert all(f"{STRAYS + 1} results for requests" in line for line in closed)
    assert flood.sent > (STRAYS + 1) * flood.welcomed  # sent more than the hub read

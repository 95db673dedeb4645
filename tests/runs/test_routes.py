"""Runs through the API against a live hub, its embedded worker and live recognizers:
start, progress, leaderboard, results, cancel and resume."""

import csv
import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.db import make_engine
from tests.builders import admin_headers, register_team
from tests.runs.api_builders import (
    CAT_DOG,
    LABELS,
    RESULT_KEYS,
    parse_jsonl,
    poll_until,
    recognizers,
    results_of,
    seed_dataset,
    start_run,
    wait_for,
)
from tests.runs.builders import item_counts, recognizer_app
from tests.servers import LiveServer


def test_dry_run_completes_with_leaderboard_and_results(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
    with recognizers(CAT_DOG, "bird:0.8") as (good, poor), httpx.Client(base_url=hub.url) as c:
        a = register_team(c, [good.url], name="alpha")
        b = register_team(c, [poor.url], name="beta")
        run = start_run(c, dataset_id, "dryrun", services=[a.service_guid, b.service_guid])
        assert run["state"] in {"queued", "running"}
        assert run["phase"] == "dryrun" and run["metric"] == "top5"
        assert {s["service_guid"] for s in run["services"]} == {a.service_guid, b.service_guid}

        done = wait_for(c, run["id"], {"completed"})
        assert done["finished_at"] is not None
        # How late the worker's loop ran while sending (SPEC §8), on the run and each row.
        assert done["timing_uncertainty_ms"] >= 0.0
        for s in done["services"]:
            assert s["status"] == "passed", s
            assert (s["done"], s["total"]) == (4, 4)
            assert s["outcomes"]["ok"] == 4
            assert sum(s["outcomes"].values()) == 4

        r = c.get(f"/api/v1/runs/{run['id']}/leaderboard", headers=admin_headers())
        assert r.status_code == 200, r.text
        rows = r.json()
        assert [row["service_guid"] for row in rows] == [a.service_guid, b.service_guid]
        assert [row["rank"] for row in rows] == [1, 2]
        best = rows[0]
        assert best["provider_guid"] == a.provider_guid and best["provider_name"] == "alpha"
        assert best["images"] == 4
        assert best["top1"] == pytest.approx(0.5)
        assert best["top5"] == pytest.approx(0.75)
        assert rows[1]["top1"] == pytest.approx(0.25)
        assert best["latency_ms"]["p50"] is not None
        assert {row["timing_uncertainty_ms"] for row in rows} == {done["timing_uncertainty_ms"]}

        r = results_of(c, run["id"], a.service_guid)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = parse_jsonl(r.text)
        assert {line["key"] for line in lines} == set(LABELS)
        for line in lines:
            assert set(line) == RESULT_KEYS
            assert line["outcome"] == "ok" and line["attempts"] == 1
            assert line["raw"] == CAT_DOG
            assert line["tags"] == [{"tag": "cat", "score": 0.9}, {"tag": "dog", "score": 0.5}]
        ranks = {line["key"]: line["true_rank"] for line in lines}
        assert ranks == {"img-a": 1, "img-b": 1, "img-c": 2, "img-d": None}


def test_results_csv_and_jsonl_agree(
    sqlite_hub: LiveServer, sqlite_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(sqlite_url, tmp_path / "data", LABELS)
    with recognizers("dog:0.75;a, b: c:0.25") as (rec,), httpx.Client(base_url=sqlite_hub.url) as c:
        team = register_team(c, [rec.url])
        run = start_run(c, dataset_id, "dryrun", services=[team.service_guid])
        wait_for(c, run["id"], {"completed"})

        jsonl = parse_jsonl(results_of(c, run["id"], team.service_guid).text)
        r = results_of(c, run["id"], team.service_guid, "csv")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(r.text)))

    assert len(table) == len(jsonl) == 4
    assert list(table[0]) == [
        "key",
        "outcome",
        "attempts",
        "latency_ms",
        "raw",
        "tags",
        "true_rank",
    ]
    by_key = {row["key"]: row for row in table}
    for line in jsonl:
        row = by_key[line["key"]]
        assert row["outcome"] == line["outcome"]
        assert int(row["attempts"]) == line["attempts"]
        assert float(row["latency_ms"]) == pytest.approx(line["latency_ms"])
        assert row["raw"] == line["raw"]
        assert row["tags"] == "".join(f"{t['tag']}:{t['score']};" for t in line["tags"])
        assert (int(row["true_rank"]) if row["true_rank"] else None) == line["true_rank"]
    # A tag may hold ":" and "," (split at the last ":"); CSV quoting keeps it whole.
    assert jsonl[0]["tags"][1] == {"tag": "a, b: c", "score": 0.25}


def test_cancel_stops_and_resume_finishes_without_duplicates(
    hub: LiveServer, database_url: str, tmp_path: Path, serve: Callable[[Any], str]
) -> None:
    labels = {f"k{i:02d}": "cat" for i in range(24)}
    dataset_id = seed_dataset(database_url, tmp_path / "data", labels)
    # The recognizer holds its one request (concurrency 1) until the test opens the gate:
    # the cancel surely comes while the run has sent exactly one image.
    gate = threading.Event()
    app, seen = recognizer_app(lambda body: CAT_DOG, gate=gate)
    engine = make_engine(database_url)
    try:
        with httpx.Client(base_url=hub.url, headers=admin_headers()) as c:
            team = register_team(c, [serve(app)])
            run = start_run(c, dataset_id, "dryrun", services=[team.service_guid], concurrency=1)
            path = f"/api/v1/runs/{run['id']}"
            poll_until(lambda: seen.in_flight == 1, "the first request at the recognizer")

            r = c.post(f"{path}/cancel")
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "cancelled"
            # The worker lets go of the run: every unsent item is pending again, only
            # the one in flight stays leased; answered, it is recorded, and nothing more.
            poll_until(
                lambda: item_counts(engine, run["id"]) == {"leased": 1, "pending": 23},
                "the worker to give back the unsent items",
            )
            gate.set()
            poll_until(
                lambda: item_counts(engine, run["id"]) == {"done": 1, "pending": 23},
                "the request in flight to be recorded",
            )
            settled = c.get(path).json()
            assert settled["state"] == "cancelled"
            assert settled["services"][0]["done"] == 1
            assert seen.requests == 1

            r = c.post(f"{path}/resume")
            assert r.status_code == 200, r.text
            assert r.json()["state"] in {"queued", "running"}
            done = wait_for(c, run["id"], {"completed"})
            assert done["services"][0]["done"] == 24
            assert done["services"][0]["outcomes"]["ok"] == 24
            results = results_of(c, run["id"], team.service_guid).text
    finally:
        gate.set()
        engine.dispose()
    assert sorted(line["key"] for line in parse_jsonl(results)) == sorted(labels)
    assert seen.requests == 24  # each image sent once: none again after the resume


def test_start_run_is_checked(sqlite_hub: LiveServer, sqlite_url: str, tmp_path: Path) -> None:
    dataset_id = seed_dataset(sqlite_url, tmp_path / "data", LABELS)
    with httpx.Client(base_url=sqlite_hub.url) as c:
        team = register_team(c, ["http://127.0.0.1:9"])
        body = {"dataset": dataset_id, "phase": "dryrun"}

        assert c.post("/api/v1/runs", json=body).status_code == 401
        r = c.post("/api/v1/runs", json=body, headers={"Authorization": f"Bearer {team.api_key}"})
        assert r.status_code == 403

        r = c.post("/api/v1/runs", json={**body, "phase": "final"}, headers=admin_headers())
        assert r.status_code == 422 and r.json()["code"] == "invalid_input"
        assert "phase" in r.json()["detail"]

        r = c.post("/api/v1/runs", json={**body, "dataset": "nope"}, headers=admin_headers())
        assert r.status_code == 404 and r.json()["code"] == "not_found"

        r = c.post(
            "/api/v1/runs", json={**body, "services": [team.provider_guid]}, headers=admin_headers()
        )
        assert r.status_code == 404 and r.json()["code"] == "wrong_guid_kind"

        # The dataset's name works as well as its id.
        run = start_run(c, "pets", "evaluation", services=[team.service_guid], metric="top1")
        assert (run["dataset"], run["phase"], run["metric"]) == ("pets", "evaluation", "top1")
        assert run["published"] is False


def test_unknown_run_is_404_everywhere(sqlite_hub: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_hub.url, headers=admin_headers()) as c:
        team = register_team(c, ["http://127.0.0.1:9"])
        for method, path in [
            ("GET", "/api/v1/runs/999"),
            ("GET", "/api/v1/runs/999/leaderboard"),
            ("GET", f"/api/v1/runs/999/results?service={team.service_guid}"),
            ("POST", "/api/v1/runs/999/cancel"),
            ("POST", "/api/v1/runs/999/resume"),
            ("POST", "/api/v1/runs/999/publish"),
        ]:
            r = c.request(method, path)
            assert r.status_code == 404, (path, r.text)
            assert r.json()["code"] == "not_found"
            assert "999" in r.json()["detail"]


def test_publish_toggles_and_list_shows_runs(
    sqlite_hub: LiveServer, sqlite_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(sqlite_url, tmp_path / "data", LABELS)
    with httpx.Client(base_url=sqlite_hub.url, headers=admin_headers()) as c:
        team = register_team(c, ["http://127.0.0.1:9"])
        run = start_run(c, dataset_id, "evaluation", services=[team.service_guid])
        path = f"/api/v1/runs/{run['id']}/publish"
        assert c.post(path, json={"published": True}).json()["published"] is True
        assert c.get(f"/api/v1/runs/{run['id']}").json()["published"] is True
        assert c.post(path, json={"published": False}).json()["published"] is False

        # A dry run is not published: each team sees its own row already.
        dry = start_run(c, dataset_id, "dryrun", services=[team.service_guid])
        refused = c.post(f"/api/v1/runs/{dry['id']}/publish")
        assert refused.status_code == 409, refused.text
        assert "publishing changes nothing for teams" in refused.json()["detail"]
        assert c.get(f"/api/v1/runs/{dry['id']}").json()["published"] is False

        listed = [r for r in c.get("/api/v1/runs").json() if r["id"] != dry["id"]]
        assert [r["id"] for r in listed] == [run["id"]]
        assert listed[0]["services"][0]["service_guid"] == team.service_guid

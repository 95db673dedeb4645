"""The organizer's views of a run beyond the leaderboard: failures grouped by kind,
per-class figures, the timeline and the exports (whole-run results, leaderboard CSV).

Every figure is checked against values computed here from the recorded results, as the
organizer's whole-run export gives them; and who may see what.
"""

import csv
import io
import math
import socket
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from gateway.protocol.result_string import tag_key
from gateway.runs.failures import OTHER, normalize_detail
from tests.builders import ADMIN_TOKEN, Team, admin_headers, bearer, register_team
from tests.runs.api_builders import (
    CAT_DOG,
    RESULT_KEYS,
    parse_jsonl,
    recognizers,
    seed_dataset,
    start_run,
    wait_for,
)
from tests.servers import LiveServer

# Fewer images than the breaker's 10 failures in a row (SPEC §9): every item is sent.
LABELS = {
    "k1": "cat",
    "k2": "cat",
    "k3": "Cat",
    "k4": "dog",
    "k5": "dog",
    "k6": "bird",
    "k7": "bird",
    "k8": "fish",
}
RUN_KEYS = {"service_guid", *RESULT_KEYS, "labels", "detail", "request_id", "finished_at"}


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def get(c: httpx.Client, path: str, token: str = ADMIN_TOKEN, **params: Any) -> httpx.Response:
    return c.get(path, params=params, headers=bearer(token))


def ok_json(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    return r.json()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def nearest_rank(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percent * len(ordered) / 100)) - 1]


def test_normalized_details_group_alike_errors() -> None:
    same = [
        "cannot connect to 127.0.0.1:40123: Connection refused",
        "cannot connect to 127.0.0.1:40999: Connection refused",
    ]
    assert normalize_detail(same[0]) == normalize_detail(same[1])
    assert normalize_detail(same[0]) == "cannot connect to <n>:<n>: Connection refused"
    ids = [
        "request 3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7 timed out after 5.01 s",
        "request 0a1b2c3d4e5f60718293a4b5c6d7e8f9 timed out after 12.5 s",
        "request 123e4567-e89b-12d3-a456-426614174000 timed out after 5 s",
    ]
    assert {normalize_detail(d) for d in ids} == {"request <id> timed out after <n> s"}
    # Words are kept: a different error stays a different kind.
    assert normalize_detail("HTTP 500: deliberate error") != normalize_detail("HTTP 500: boom")
    assert normalize_detail("  bad   format\n at 3 ") == "bad format at <n>"
    assert normalize_detail(None) == ""
    assert len(normalize_detail("x" * 10_000)) <= 300


def finished_run(
    c: httpx.Client, database_url: str, tmp_path: Path, phase: str, *teams: Team
) -> dict[str, Any]:
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS, name=f"pets-{phase}")
    guids = [t.service_guid for t in teams]
    run = start_run(c, dataset_id, phase, services=guids, max_attempts=1, timeout_s=5)
    return wait_for(c, run["id"], {"completed"}, timeout=60)


def test_failures_classes_timeline_and_exports_match_the_recorded_results(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    with (
        recognizers(CAT_DOG, error_status_rate=0.5, bad_rate=0.3, seed=7) as (flaky,),
        recognizers("Dog:0.8;CAT:0.4;bird:0.1") as (swapped,),
        httpx.Client(base_url=hub.url) as c,
    ):
        alpha = register_team(c, [flaky.url], name="alpha")
        beta = register_team(c, [swapped.url], name="beta")
        gamma = register_team(c, [f"http://127.0.0.1:{closed_port()}"], name="gamma")
        run = finished_run(c, database_url, tmp_path, "dryrun", alpha, beta, gamma)
        run_id = run["id"]
        order = [alpha.service_guid, beta.service_guid, gamma.service_guid]

        # The whole-run export: every service, in run order, with the organizer's columns.
        r = get(c, f"/api/v1/runs/{run_id}/results")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/x-ndjson")
        rows = parse_jsonl(r.text)
        assert all(set(row) == RUN_KEYS for row in rows)
        assert len(rows) == 3 * len(LABELS)
        assert list(dict.fromkeys(row["service_guid"] for row in rows)) == order
        for row in rows:
            assert row["labels"] == [LABELS[row["key"]]]
            assert row["request_id"] and row["finished_at"].endswith("Z")
            if row["outcome"] != "ok":
                assert row["detail"], row
        by_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_service[row["service_guid"]].append(row)
        # ... and each service's rows are its own export's, column for column.
        for guid in order:
            own = parse_jsonl(get(c, f"/api/v1/runs/{run_id}/results", service=guid).text)
            assert [{k: row[k] for k in RESULT_KEYS} for row in by_service[guid]] == own
        outcomes = Counter(row["outcome"] for row in by_service[alpha.service_guid])
        assert outcomes["http_error"] and outcomes["ok"], outcomes  # seed 7: both kinds
        assert {row["outcome"] for row in by_service[gamma.service_guid]} == {"connect_error"}

        # CSV: the same rows and columns.
        r = get(c, f"/api/v1/runs/{run_id}/results", format="csv")
        assert r.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(r.text, newline="")))
        assert list(table[0]) == [
            "service_guid",
            *RESULT_KEYS_ORDER,
            "labels",
            "detail",
            "request_id",
            "finished_at",
        ]
        assert [(t["service_guid"], t["key"], t["outcome"]) for t in table] == [
            (row["service_guid"], row["key"], row["outcome"]) for row in rows
        ]
        for t, row in zip(table, rows, strict=True):
            assert t["labels"] == ";".join(row["labels"])
            assert t["request_id"] == row["request_id"] and t["finished_at"] == row["finished_at"]
            assert t["detail"] == (row["detail"] or "")

        # Failures: grouped by service, outcome, status and normalized detail.
        groups = ok_json(get(c, f"/api/v1/runs/{run_id}/failures"))
        expected: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            if row["outcome"] != "ok":
                key = (row["service_guid"], row["outcome"], normalize_detail(row["detail"]))
                expected[key].append(row)
        assert sorted((g["service_guid"], g["outcome"], g["detail"]) for g in groups) == sorted(
            expected
        )
        assert all(g["detail"] != OTHER for g in groups)
        assert [g["service_guid"] for g in groups] == sorted(
            (g["service_guid"] for g in groups), key=order.index
        )
        for g in groups:
            members = expected[(g["service_guid"], g["outcome"], g["detail"])]
            assert g["count"] == len(members)
            assert when(g["first_seen"]) == min(when(m["finished_at"]) for m in members)
            assert when(g["last_seen"]) == max(when(m["finished_at"]) for m in members)
            ids = [m["request_id"] for m in members]
            assert g["request_ids"] == ids[:5]
            assert g["example"] in {m["detail"] for m in members}
            if g["outcome"] in ("http_error", "connect_error"):
                assert g["http_status"] == (500 if g["outcome"] == "http_error" else None)
        gamma_groups = [g for g in groups if g["service_guid"] == gamma.service_guid]
        assert sum(g["count"] for g in gamma_groups) == len(LABELS)

        # Classes: per true label (by tag_key), figures of each service.
        for guid in order:
            classes = ok_json(get(c, f"/api/v1/runs/{run_id}/services/{guid}/classes"))
            assert classes == expected_classes(by_service[guid])
        swapped_classes = {
            tag_key(row["label"]): row
            for row in ok_json(
                get(c, f"/api/v1/runs/{run_id}/services/{beta.service_guid}/classes")
            )
        }
        # `CAT` answers the label `cat` (and `Cat`); `Dog` wins over it where the truth is cat.
        assert swapped_classes["cat"]["images"] == 3 and swapped_classes["cat"]["top1"] == 0
        assert swapped_classes["cat"]["top5"] == 3
        assert swapped_classes["cat"]["wrong_top1"] == [{"tag": "Dog", "count": 3}]
        assert swapped_classes["dog"]["top1"] == 2 and swapped_classes["dog"]["wrong_top1"] == []

        # Timeline: buckets of finished_at from the run's start.
        for bucket_s in (0.05, 3600.0):
            timeline = ok_json(get(c, f"/api/v1/runs/{run_id}/timeline", bucket_s=bucket_s))
            assert when(timeline["origin"]) == when(run["started_at"])
            assert [s["service_guid"] for s in timeline["services"]] == order
            for s in timeline["services"]:
                for b in s["buckets"]:
                    b["start"] = when(b["start"])
                assert s["buckets"] == expected_buckets(
                    by_service[s["service_guid"]], when(run["started_at"]), bucket_s
                )
            assert sum(b["done"] for s in timeline["services"] for b in s["buckets"]) == len(rows)
        r = get(c, f"/api/v1/runs/{run_id}/timeline", bucket_s=0.05, format="csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        timeline = ok_json(get(c, f"/api/v1/runs/{run_id}/timeline", bucket_s=0.05))
        lines = list(csv.DictReader(io.StringIO(r.text, newline="")))
        flat = [(s["service_guid"], b) for s in timeline["services"] for b in s["buckets"]]
        assert len(lines) == len(flat)
        for line, (guid, b) in zip(lines, flat, strict=True):
            assert line["service_guid"] == guid and int(line["done"]) == b["done"]
            assert int(line["ok"]) == b["ok"]
            assert int(line["http_error"]) == b["failures"].get("http_error", 0)
            p99 = b["latency_ms"]["p99"]
            assert (line["latency_p99_ms"] or None) == (None if p99 is None else repr(p99))

        # Leaderboard CSV: the JSON rows, flattened.
        board = ok_json(get(c, f"/api/v1/runs/{run_id}/leaderboard"))
        r = get(c, f"/api/v1/runs/{run_id}/leaderboard", format="csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        lines = list(csv.DictReader(io.StringIO(r.text, newline="")))
        assert [line["service_guid"] for line in lines] == [row["service_guid"] for row in board]
        for line, row in zip(lines, board, strict=True):
            assert int(line["rank"]) == row["rank"] and int(line["images"]) == row["images"]
            assert (line["top1"] or None) == (None if row["top1"] is None else repr(row["top1"]))
            assert int(line["http_error"]) == row["outcomes"]["http_error"]
            p50 = row["latency_ms"]["p50"]
            assert (line["latency_p50_ms"] or None) == (None if p50 is None else repr(p50))


RESULT_KEYS_ORDER = ("key", "outcome", "attempts", "latency_ms", "raw", "tags", "true_rank")


def expected_classes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-class figures computed from export rows (one true label per image here)."""
    figures: dict[str, dict[str, Any]] = {}
    for row in rows:
        (label,) = row["labels"]
        f = figures.setdefault(
            tag_key(label),
            {"label": label, "images": 0, "top1": 0, "top5": 0, "failed": 0, "wrong": Counter()},
        )
        f["images"] += 1
        tags = [t["tag"] for t in row["tags"]] if row["outcome"] == "ok" else []
        keys = list(dict.fromkeys(tag_key(t) for t in tags))
        f["failed"] += row["outcome"] != "ok"
        f["top1"] += bool(keys) and keys[0] == tag_key(label)
        f["top5"] += tag_key(label) in keys[:5]
        if keys and keys[0] != tag_key(label):
            f["wrong"][tags[0]] += 1
    return [
        {
            "label": f["label"],
            "images": f["images"],
            "top1": f["top1"],
            "top5": f["top5"],
            "failed": f["failed"],
            "top1_accuracy": f["top1"] / f["images"],
            "top5_accuracy": f["top5"] / f["images"],
            "wrong_top1": [
                {"tag": tag, "count": n}
                for tag, n in sorted(f["wrong"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
            ],
        }
        for _, f in sorted(figures.items())
    ]


def expected_buckets(
    rows: list[dict[str, Any]], origin: datetime, bucket_s: float
) -> list[dict[str, Any]]:
    width = timedelta(seconds=bucket_s)
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[max(0, (when(row["finished_at"]) - origin) // width)].append(row)
    buckets = []
    for index in sorted(grouped):
        members = grouped[index]
        ok = [m["latency_ms"] for m in members if m["outcome"] == "ok"]
        failures = Counter(m["outcome"] for m in members if m["outcome"] != "ok")
        buckets.append(
            {
                "start": origin + index * width,
                "t_s": index * bucket_s,
                "done": len(members),
                "ok": len(ok),
                "failures": dict(failures),
                "images_per_s": len(members) / bucket_s,
                "latency_ms": {
                    "p50": nearest_rank(ok, 50) if ok else None,
                    "p99": nearest_rank(ok, 99) if ok else None,
                },
            }
        )
    return buckets


def test_who_sees_failures_classes_timeline_and_exports(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    with (
        recognizers(CAT_DOG, error_status_rate=0.5, seed=3) as (ra,),
        recognizers("bird:0.5", error_status_rate=0.5, seed=5) as (rb,),
        httpx.Client(base_url=hub.url) as c,
    ):
        alpha = register_team(c, [ra.url], name="alpha")
        beta = register_team(c, [rb.url], name="beta")
        gamma = register_team(c, [ra.url], name="gamma")  # in no run
        dry = finished_run(c, database_url, tmp_path, "dryrun", alpha, beta)["id"]
        ev = finished_run(c, database_url, tmp_path, "evaluation", alpha, beta)["id"]

        def status(path: str, token: str | None, **params: Any) -> int:
            headers = bearer(token) if token else {}
            return c.get(path, params=params, headers=headers).status_code

        # Failures: a team its own groups, of dry runs only.
        everyone = ok_json(get(c, f"/api/v1/runs/{dry}/failures"))
        assert {g["service_guid"] for g in everyone} == {alpha.service_guid, beta.service_guid}
        own = ok_json(get(c, f"/api/v1/runs/{dry}/failures", alpha.api_key))
        assert own == [g for g in everyone if g["service_guid"] == alpha.service_guid]
        assert status(f"/api/v1/runs/{dry}/failures", gamma.api_key) == 403
        assert status(f"/api/v1/runs/{ev}/failures", alpha.api_key) == 403
        assert status(f"/api/v1/runs/{dry}/failures", None) == 401
        assert status("/api/v1/runs/999999/failures", ADMIN_TOKEN) == 404

        # Classes: the organizer any service; a team its own, of dry runs only.
        classes = f"/api/v1/runs/{dry}/services/{alpha.service_guid}/classes"
        assert status(classes, ADMIN_TOKEN) == 200
        assert status(classes, alpha.api_key) == 200
        assert status(classes, beta.api_key) == 403
        assert status(classes, None) == 401
        ev_classes = f"/api/v1/runs/{ev}/services/{alpha.service_guid}/classes"
        assert status(ev_classes, ADMIN_TOKEN) == 200
        assert status(ev_classes, alpha.api_key) == 403
        r = get(c, f"/api/v1/runs/{dry}/services/{gamma.service_guid}/classes")
        assert r.status_code == 404 and "takes no part" in r.json()["detail"]
        r = get(c, f"/api/v1/runs/{dry}/services/{alpha.provider_guid}/classes")
        assert r.status_code == 404 and r.json()["code"] == "wrong_guid_kind"
        # Labels never reach a team: per-class figures name only labels of its answers'
        # images, and only through its own dry run (checked above); the export is admin's.
        assert status(f"/api/v1/runs/{dry}/results", alpha.api_key) == 403
        assert status(f"/api/v1/runs/{dry}/results", None) == 401
        r = get(c, f"/api/v1/runs/{dry}/results", alpha.api_key, service=alpha.service_guid)
        assert r.status_code == 200 and all(set(x) == RESULT_KEYS for x in parse_jsonl(r.text))

        # Timeline and leaderboard CSV: as the leaderboard.
        for fmt in ("json", "csv"):
            for path in ("timeline", "leaderboard"):
                assert status(f"/api/v1/runs/{dry}/{path}", gamma.api_key, format=fmt) == 403
                assert status(f"/api/v1/runs/{ev}/{path}", alpha.api_key, format=fmt) == 403
                assert status(f"/api/v1/runs/{dry}/{path}", None, format=fmt) == 401
        timeline = ok_json(get(c, f"/api/v1/runs/{dry}/timeline", alpha.api_key))
        assert [s["service_guid"] for s in timeline["services"]] == [alpha.service_guid]
        r = get(c, f"/api/v1/runs/{dry}/leaderboard", beta.api_key, format="csv")
        assert r.status_code == 200
        lines = list(csv.DictReader(io.StringIO(r.text, newline="")))
        assert [line["service_guid"] for line in lines] == [beta.service_guid]
        c.post(f"/api/v1/runs/{ev}/publish", json={"published": True}, headers=admin_headers())
        timeline = ok_json(get(c, f"/api/v1/runs/{ev}/timeline", gamma.api_key))
        assert len(timeline["services"]) == 2
        assert status(f"/api/v1/runs/{ev}/failures", alpha.api_key) == 403  # still hidden

        # Bad input is a clear 422, not a 500.
        # A bucket under the floor of a millisecond too (1e-7 s was a 500, issue 17).
        for bad in ("0", "-1", "nan", "1e9", "x", "1e-7", "0.0009"):
            r = get(c, f"/api/v1/runs/{dry}/timeline", bucket_s=bad)
            assert r.status_code == 422 and r.json()["code"] == "invalid_input", (bad, r.text)
            assert bad not in ("1e-7", "0.0009") or "0.001" in r.json()["detail"], r.text
        timeline = ok_json(get(c, f"/api/v1/runs/{dry}/timeline", bucket_s="0.001"))
        assert timeline["bucket_s"] == 0.001 and timeline["services"][0]["buckets"]
        r = get(c, f"/api/v1/runs/{dry}/leaderboard", format="xml")
        assert r.status_code == 422

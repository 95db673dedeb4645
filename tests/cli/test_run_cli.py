"""`recoghub run ...` against a live hub: start --watch, status, leaderboard, results."""

import csv
import io
import json
import threading
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gateway.cli.main import app
from tests.builders import ADMIN_TOKEN, bearer, register_team
from tests.runs.api_builders import CAT_DOG, LABELS, parse_jsonl, recognizers, seed_dataset
from tests.runs.builders import recognizer_app
from tests.servers import LiveServer, live_server

runner = CliRunner()


def recoghub(hub: LiveServer, *args: str, token: str = ADMIN_TOKEN) -> tuple[int, str]:
    result = runner.invoke(
        app, ["run", *args, "--hub", hub.url, "--token", token], catch_exceptions=False
    )
    return result.exit_code, result.output


def test_start_watch_leaderboard_and_results(
    sqlite_hub: LiveServer, sqlite_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(sqlite_url, tmp_path / "data", LABELS)
    with recognizers(CAT_DOG) as (rec,), httpx.Client(base_url=sqlite_hub.url) as c:
        team = register_team(c, [rec.url], name="alpha")
        code, out = recoghub(
            sqlite_hub,
            "start",
            "--dataset",
            str(dataset_id),
            "--phase",
            "dryrun",
            "--service",
            team.service_guid,
            "--watch",
            "--interval",
            "0.1",
        )
        assert code == 0, out
        assert "completed" in out and "4/4" in out and "alpha" in out

        code, out = recoghub(sqlite_hub, "list", "--json")
        assert code == 0, out
        (run,) = json.loads(out)
        run_id = run["id"]

        code, out = recoghub(sqlite_hub, "status", str(run_id))
        assert code == 0 and "passed" in out

        code, out = recoghub(sqlite_hub, "leaderboard", str(run_id), "--json")
        assert code == 0, out
        (row,) = json.loads(out)
        assert row["service_guid"] == team.service_guid and row["top5"] == 0.75

        exported = tmp_path / "board.csv"
        code, out = recoghub(sqlite_hub, "leaderboard", str(run_id), "--csv", str(exported))
        assert code == 0 and "alpha" in out
        expected = row["timing_uncertainty_ms"]
        assert f"latencies are exact to about {expected:.1f} ms" in " ".join(out.split())
        assert (
            f"ranked by top-5; an equal top-5 is ordered by p50 latency only where the p50s "
            f"differ by more than {expected:.1f} ms (the timing uncertainty)"
        ) in " ".join(out.split()), out
        assert (row["ranked_by"], row["tie_breaker"]) == ("top5", "latency_p50")
        (exported_row,) = csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8")))
        assert exported_row["rank"] == "1" and float(exported_row["top5"]) == 0.75
        assert (exported_row["ranked_by"], exported_row["tie_breaker"]) == ("top5", "latency_p50")
        assert float(exported_row["timing_uncertainty_ms"]) == expected

        jsonl, table = tmp_path / "r.jsonl", tmp_path / "r.csv"
        base = ["results", str(run_id), "--service", team.service_guid]
        code, out = recoghub(sqlite_hub, *base, "--output", str(jsonl))
        assert code == 0, out
        code, out = recoghub(sqlite_hub, *base, "--format", "csv", "--output", str(table))
        assert code == 0, out

    lines = parse_jsonl(jsonl.read_text(encoding="utf-8"))
    rows = list(csv.DictReader(io.StringIO(table.read_text(encoding="utf-8"), newline="")))
    assert sorted(line["key"] for line in lines) == sorted(r["key"] for r in rows) == sorted(LABELS)
    assert {line["key"]: line["true_rank"] for line in lines}["img-c"] == 2


def test_cancel_watch_resume_and_publish(
    sqlite_hub: LiveServer, sqlite_url: str, tmp_path: Path
) -> None:
    seed_dataset(sqlite_url, tmp_path / "data", LABELS)
    # The recognizer answers nothing until the gate opens: the run cannot end before the
    # cancel, however slow the machine.
    gate = threading.Event()
    app, _ = recognizer_app(lambda body: CAT_DOG, gate=gate)
    try:
        with live_server(app) as rec, httpx.Client(base_url=sqlite_hub.url) as c:
            team = register_team(c, [rec.url])  # the run takes every enabled service
            code, out = recoghub(
                sqlite_hub, "start", "--dataset", "pets", "--phase", "evaluation", "--json"
            )
            assert code == 0, out
            run_id = json.loads(out)["id"]
            code, out = recoghub(sqlite_hub, "cancel", str(run_id))
            assert code == 0 and "cancelled" in out

            code, out = recoghub(sqlite_hub, "watch", str(run_id), "--json")
            assert code == 1
            assert json.loads(out[: out.rindex("}") + 1])["state"] == "cancelled"
            assert f"run {run_id} ended cancelled" in out and "resume" in out

            gate.set()
            code, out = recoghub(sqlite_hub, "resume", str(run_id), "--json")
            assert code == 0, out
            assert json.loads(out)["state"] in {"queued", "running"}
            code, out = recoghub(sqlite_hub, "watch", str(run_id), "--interval", "0.1")
            assert code == 0 and "completed" in out and "4/4" in out

            # A completed run cannot be resumed: the hub's 409, in one line.
            code, out = recoghub(sqlite_hub, "resume", str(run_id))
            assert code == 1 and "409" in out and "completed" in out
            assert len(out.strip().splitlines()) == 1

            leaderboard = f"/api/v1/runs/{run_id}/leaderboard"
            assert c.get(leaderboard, headers=bearer(team.api_key)).status_code == 403
            code, out = recoghub(sqlite_hub, "publish", str(run_id), "--json")
            assert code == 0 and json.loads(out)["published"] is True
            assert c.get(leaderboard, headers=bearer(team.api_key)).status_code == 200
            code, out = recoghub(sqlite_hub, "publish", str(run_id), "--unpublish", "--json")
            assert code == 0 and json.loads(out)["published"] is False
            assert c.get(leaderboard, headers=bearer(team.api_key)).status_code == 403
    finally:
        gate.set()


def test_failures_are_one_clear_line(sqlite_hub: LiveServer) -> None:
    code, out = recoghub(sqlite_hub, "status", "999")
    assert code == 1
    assert "404" in out and "999" in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1

    code, out = recoghub(sqlite_hub, "list", token="ra_wrong")
    assert code == 1
    assert "401" in out and "hint" in out and "Traceback" not in out

    code, out = recoghub(sqlite_hub, "start", "--dataset", "nope", "--phase", "dryrun")
    assert code == 1 and "nope" in out

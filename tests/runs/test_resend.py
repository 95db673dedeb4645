"""The organizer re-sends a service's images by outcome (README, "Re-sending a team's
images"): a team whose recognizer was down for part of an evaluation gets its true
outcomes, the earlier ones are kept as history, and the leaderboard equals a full
rescore and says the service was re-sent."""

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cmdline_tool.main import app as team_app
from gateway.app import create_app
from gateway.cli.main import app as recoghub_app
from gateway.cli.run_list import wire
from gateway.db import make_engine
from gateway.runs import live_scores
from gateway.runs.finish import service_scores
from gateway.runs.models import EarlierResult, RunService
from tests.builders import ADMIN_TOKEN, admin_headers, bearer, hub_settings, register_team
from tests.dialout.support import DialoutProcess, dialout_recognizer, gated_args
from tests.runs.api_builders import (
    CAT_DOG,
    LABELS,
    poll_until,
    reach_deadline,
    recognizers,
    seed_dataset,
    start_run,
    wait_for,
)
from tests.runs.builders import recognizer_app
from tests.servers import LiveServer, live_server

MANY = {f"img-{n:03d}": ("cat", "dog", "cat", "bird")[n % 4] for n in range(60)}
FIGURES = ("images", "top1", "top5", "coverage_at_95", "coverage_at_99", "micro_ap", "outcomes")
runner = CliRunner()


@pytest.fixture
def quick_hub(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A hub that sends to a dial-out service at once (no grace) and never pauses one (no
    breaker): a recognizer that goes away costs its team `connect_error` results."""
    settings = hub_settings(
        database_url, tmp_path / "data", dialout_grace_s=0.0, breaker_failures=0
    )
    with live_server(create_app(settings)) as server:
        yield server


def leaderboard(client: httpx.Client, run_id: int) -> dict[str, dict[str, Any]]:
    r = client.get(f"/api/v1/runs/{run_id}/leaderboard", headers=admin_headers())
    assert r.status_code == 200, r.text
    return {row["service_guid"]: row for row in r.json()}


def test_resend_turns_connect_errors_into_true_outcomes_and_keeps_the_history(
    quick_hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(database_url, tmp_path / "data", MANY)
    with recognizers(CAT_DOG) as (http_recognizer,), httpx.Client(base_url=quick_hub.url) as c:
        steady = register_team(c, [http_recognizer.url], max_concurrency=2)
        flaky = register_team(c, [], max_concurrency=2)
        first = DialoutProcess(
            quick_hub.url, flaky, tmp_path / "first.log", "--answer", CAT_DOG, "--delay-ms", "30"
        )
        try:
            first.wait_connected()
            run = start_run(
                c, dataset_id, "evaluation", services=[steady.service_guid, flaky.service_guid]
            )

            def flaky_ok() -> int:
                body = c.get(f"/api/v1/runs/{run['id']}", headers=admin_headers()).json()
                (row,) = [s for s in body["services"] if s["service_guid"] == flaky.service_guid]
                return int(row["outcomes"]["ok"])

            poll_until(lambda: flaky_ok() >= 10, "some answers before the recognizer dies")
            first.kill()  # the team's recognizer is down for the rest of the run
        finally:
            first.stop()
        wait_for(c, run["id"], {"completed"}, timeout=60)
        before = leaderboard(c, run["id"])[flaky.service_guid]
        failed = before["outcomes"]["connect_error"]
        assert failed > 0 and before["outcomes"]["ok"] + failed == len(MANY), before
        assert before["resent"] == 0

        second = DialoutProcess(quick_hub.url, flaky, tmp_path / "second.log", "--answer", CAT_DOG)
        try:
            second.wait_connected()
            result = runner.invoke(
                recoghub_app,
                ["run", "resend", str(run["id"]), "--service", flaky.service_guid]
                + ["--outcome", "connect_error,missed,unreachable"]
                + ["--hub", quick_hub.url, "--token", ADMIN_TOKEN],
                catch_exceptions=False,
            )
            assert result.exit_code == 0, result.output
            assert f"{failed} images of service {flaky.service_guid} sent again" in (
                " ".join(result.output.split())
            )
            done = wait_for(c, run["id"], {"completed"}, timeout=60)
        finally:
            second.stop()
        board = leaderboard(c, run["id"])
        history = c.get(
            f"/api/v1/runs/{run['id']}/resends",
            params={"service": flaky.service_guid},
            headers=admin_headers(),
        )
        table = runner.invoke(
            recoghub_app,
            ["run", "leaderboard", str(run["id"]), "--hub", quick_hub.url, "--token", ADMIN_TOKEN],
            catch_exceptions=False,
        )
        published = c.post(f"/api/v1/runs/{run['id']}/publish", headers=admin_headers())
        assert published.status_code == 200, published.text
        team_view = runner.invoke(
            team_app,
            ["leaderboard", str(run["id"]), "--hub", quick_hub.url, "--key", flaky.api_key],
            env={"RECOGHUB_HUB": None, "RECOGHUB_API_KEY": None},
            catch_exceptions=False,
        )

    row = board[flaky.service_guid]
    assert row["outcomes"]["ok"] == len(MANY), row
    assert sum(row["outcomes"].values()) == len(MANY)
    assert row["status"] == "passed" and not row["provisional"]
    assert row["resent"] == failed
    assert board[steady.service_guid]["resent"] == 0
    # The same answers as the steady team's: the same scores.
    assert {k: row[k] for k in FIGURES} == {k: board[steady.service_guid][k] for k in FIGURES}
    (progress,) = [s for s in done["services"] if s["service_guid"] == flaky.service_guid]
    assert progress["resent"] == failed and progress["done"] == len(MANY)
    assert f"(re-sent {failed})" in " ".join(table.output.split()), table.output
    assert team_view.exit_code == 0, team_view.output
    assert f"the organizer had {failed} images of" in " ".join(team_view.output.split())

    assert history.status_code == 200, history.text
    earlier = history.json()
    assert len(earlier) == failed
    assert {e["outcome"] for e in earlier} == {"connect_error"}
    assert len({e["key"] for e in earlier}) == failed and {e["key"] for e in earlier} <= set(MANY)

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            member = conn.execute(
                select(RunService.id).where(
                    RunService.run_id == run["id"], RunService.position == 1
                )
            ).scalar_one()
            rescore = service_scores(conn, run_service_id=member)
            tally = live_scores.read_rows(conn, run_service_ids=[member])[member].tally
            kept = conn.execute(
                select(EarlierResult.outcome).where(EarlierResult.run_service_id == member)
            ).all()
    finally:
        engine.dispose()
    assert len(kept) == failed
    # The leaderboard is the full rescore, and the live scores counted every image once.
    assert {k: row[k] for k in FIGURES} == {k: rescore[k] for k in FIGURES}
    live = tally.result()
    assert {k: live[k] for k in ("images", "top1", "top5", "outcomes")} == {
        k: rescore[k] for k in ("images", "top1", "top5", "outcomes")
    }


def test_resend_refuses_ok_unknown_outcomes_services_and_teams(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
    with recognizers(CAT_DOG) as (rec,), httpx.Client(base_url=hub.url) as c:
        team = register_team(c, [rec.url])
        other = register_team(c, [rec.url])
        run = start_run(c, dataset_id, "dryrun", services=[team.service_guid])
        wait_for(c, run["id"], {"completed"})
        path = f"/api/v1/runs/{run['id']}/resend"

        def resend(outcomes: list[str], guid: str = team.service_guid, **kw: Any) -> Any:
            headers = kw.get("headers", admin_headers())
            body = {"service_guid": guid, "outcomes": outcomes}
            return c.post(path, json=body, headers=headers)

        ok = resend(["ok"])
        assert ok.status_code == 422 and "ok results are the team's answers" in ok.text
        unknown = resend(["lost"])
        assert unknown.status_code == 422 and "connect_error" in unknown.text
        assert resend(["timeout"], other.service_guid).status_code == 404
        assert resend(["timeout"], headers=bearer(team.api_key)).status_code == 403
        nothing = resend(["timeout", "missed"])
        assert nothing.status_code == 200, nothing.text
        assert nothing.json() == {
            "run_id": run["id"],
            "service_guid": team.service_guid,
            "images": 0,
            "outcomes": {"timeout": 0, "missed": 0},
            "resent": 0,
            "run_state": "completed",
        }


def test_resend_while_the_run_is_open(
    quick_hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    """A team's recognizer connects late: its images failed while the run goes on for
    another team (held at a gate); re-sent then, they are answered before the run ends."""
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
    gate = tmp_path / "gate"
    with httpx.Client(base_url=quick_hub.url) as c:
        slow = register_team(c, [], max_concurrency=1)
        late = register_team(c, [], max_concurrency=1)
        teams = [slow.service_guid, late.service_guid]
        with dialout_recognizer(
            quick_hub.url, slow, tmp_path, *gated_args(), name="slow",
            RECOGHUB_TEST_GATE=str(gate),
        ):  # fmt: skip
            run = start_run(c, dataset_id, "evaluation", services=teams)

            def late_outcomes() -> dict[str, int]:
                body = c.get(f"/api/v1/runs/{run['id']}", headers=admin_headers()).json()
                (row,) = [s for s in body["services"] if s["service_guid"] == late.service_guid]
                return dict(row["outcomes"])

            poll_until(
                lambda: late_outcomes()["connect_error"] == len(LABELS), "the late team to fail"
            )
            with dialout_recognizer(quick_hub.url, late, tmp_path, "--answer", CAT_DOG):
                r = c.post(
                    f"/api/v1/runs/{run['id']}/resend",
                    json={"service_guid": late.service_guid, "outcomes": ["connect_error"]},
                    headers=admin_headers(),
                )
                assert r.status_code == 200, r.text
                assert r.json()["run_state"] == "running"  # the gated team holds it open
                assert r.json()["images"] == len(LABELS)
                poll_until(lambda: late_outcomes()["ok"] == len(LABELS), "the re-sent answers")
                (gate / "open").touch()
                done = wait_for(c, run["id"], {"completed"})
        board = leaderboard(c, run["id"])
    (late_row,) = [s for s in done["services"] if s["service_guid"] == late.service_guid]
    assert late_row["outcomes"]["connect_error"] == 0 and late_row["resent"] == len(LABELS)
    assert board[late.service_guid]["top1"] == board[slow.service_guid]["top1"] == 0.5
    assert board[late.service_guid]["resent"] == len(LABELS)


@pytest.mark.parametrize("older_hub", [False, True], ids=["counted", "older-hub"])
def test_resend_after_the_deadline_lifts_it(
    hub: LiveServer, database_url: str, tmp_path: Path, older_hub: bool
) -> None:
    """Images `missed` at the deadline, re-sent by the organizer after it: the deadline
    that passed is lifted (else they would be missed again at once) and they count. A
    hub older than this one did not count missed images in the live scores: the re-send
    then counts the service afresh."""
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
    gate = threading.Event()  # nothing is answered before the deadline
    app, _ = recognizer_app(lambda body: CAT_DOG, gate=gate)
    try:
        with live_server(app) as rec, httpx.Client(base_url=hub.url) as c:
            team = register_team(c, [rec.url])
            later = wire(datetime.now(UTC) + timedelta(hours=1))
            run = start_run(
                c, dataset_id, "evaluation", services=[team.service_guid], deadline=later
            )
            poll_until(lambda: done_of(c, run["id"]) == 0 and running(c, run["id"]), "sending")
            reach_deadline(database_url, run["id"])
            stopped = wait_for(c, run["id"], {"completed"})
            assert stopped["stopped_at_deadline"] and stopped["services"][0]["outcomes"][
                "missed"
            ] == len(LABELS)
            gate.set()
            if older_hub:
                forget_unsent(database_url)
            r = c.post(
                f"/api/v1/runs/{run['id']}/resend",
                json={"service_guid": team.service_guid, "outcomes": ["missed"]},
                headers=admin_headers(),
            )
            assert r.status_code == 200 and r.json()["run_state"] == "running", r.text
            done = wait_for(c, run["id"], {"completed"})
    finally:
        gate.set()
    assert done["deadline"] is None and done["stopped_at_deadline"] is False
    (member,) = done["services"]
    assert member["outcomes"]["ok"] == len(LABELS) and member["resent"] == len(LABELS)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            (row,) = live_scores.read_rows(conn, run_service_ids=[1]).values()
            rescore = service_scores(conn, run_service_id=1)
    finally:
        engine.dispose()
    live = row.tally.result()
    assert {k: live[k] for k in ("images", "top1", "top5", "outcomes")} == {
        k: rescore[k] for k in ("images", "top1", "top5", "outcomes")
    }


def forget_unsent(database_url: str) -> None:
    """The live row of run service 1 as an older hub left it: nothing answered, and the
    missed images not counted."""
    from sqlalchemy import update

    from gateway.runs.models import LiveScore
    from gateway.scoring.live import LiveTally

    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(LiveScore)
                .where(LiveScore.run_service_id == 1)
                .values(**LiveTally().columns())
            )
    finally:
        engine.dispose()


def done_of(client: httpx.Client, run_id: int) -> int:
    body = client.get(f"/api/v1/runs/{run_id}", headers=admin_headers()).json()
    return int(body["services"][0]["done"])


def running(client: httpx.Client, run_id: int) -> bool:
    body = client.get(f"/api/v1/runs/{run_id}", headers=admin_headers()).json()
    return bool(body["state"] == "running")

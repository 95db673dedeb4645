"""`recoghub-cli` as a team sees its own dry runs (SPEC §7): start one within the quota,
follow it, read its leaderboard, results and failures; another team's run is refused;
its services re-pointed, disabled and given a new secret; `recog --labels` accuracy."""

import json
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.builders import Team, admin_headers, png_bytes, register_team
from tests.cli.team_tool import cli, lines, recog, recognizer
from tests.runs.api_builders import CAT_DOG, LABELS, seed_dataset
from tests.servers import LiveServer


def as_team(hub: LiveServer, team: Team, *args: str) -> tuple[int, str]:
    return cli(*args, env={"RECOGHUB_HUB": hub.url, "RECOGHUB_API_KEY": team.api_key})


def test_a_team_runs_and_reads_its_own_dry_runs(
    sqlite_hub: LiveServer, sqlite_url: str, tmp_path: Path, refused_url: Callable[[], str]
) -> None:
    pets = seed_dataset(sqlite_url, tmp_path / "data", LABELS, name="pets")
    with (
        recognizer(answer=CAT_DOG) as good,
        httpx.Client(base_url=sqlite_hub.url, headers=admin_headers(), timeout=30) as c,
    ):
        alpha = register_team(c, [good.url], name="alpha")
        beta = register_team(c, [good.url], name="beta")
        code, output = as_team(sqlite_hub, alpha, "dryrun", "--dataset", "pets")
        assert code == 1
        assert "not open to team dry runs" in output and "ask the organizer" in output
        c.patch(f"/api/v1/datasets/{pets}", json={"open_to_teams": True})
        code, output = as_team(sqlite_hub, alpha, "datasets")
        assert code == 0 and "pets" in output

        code, output = as_team(sqlite_hub, alpha, "dryrun", "--dataset", "pets", "--watch")
        assert code == 0, output
        assert "passed" in lines(output)[-1]
        code, output = as_team(sqlite_hub, alpha, "runs", "--json")
        [run] = json.loads(output)["runs"]
        run_id = str(run["id"])
        assert run["started_by"] == alpha.provider_guid

        code, output = as_team(sqlite_hub, alpha, "leaderboard", run_id)
        assert code == 0 and "50.0%" in output and "75.0%" in output
        # The board names its ranking metric and its tie-breaker.
        assert "ranked by top-5; an equal top-5 is ordered by p50 latency" in " ".join(
            output.split()
        ), output
        csv_file, jsonl_file = tmp_path / "r.csv", tmp_path / "r.jsonl"
        code, output = as_team(sqlite_hub, alpha, "results", run_id, "-o", str(csv_file))
        assert code == 0, output
        assert csv_file.read_text().splitlines()[0].startswith("key,outcome,")
        assert len(csv_file.read_text().splitlines()) == 1 + len(LABELS)
        as_team(sqlite_hub, alpha, "results", run_id, "--format", "jsonl", "-o", str(jsonl_file))
        rows = [json.loads(line) for line in jsonl_file.read_text().splitlines()]
        assert sorted(r["key"] for r in rows) == sorted(LABELS)
        code, output = as_team(sqlite_hub, alpha, "failures", run_id)
        assert code == 0 and "no failures" in output

        # Another team's run: refused, saying where to look.
        code, output = as_team(sqlite_hub, beta, "status", run_id)
        assert code == 1
        assert "takes no part" in output and "recoghub-cli runs" in output
        code, output = as_team(sqlite_hub, beta, "results", run_id, "--service", alpha.service_guid)
        assert code == 1 and "another team" in output

        # A second service that is down: the dry run fails and failures say why.
        r = c.post(
            "/api/v1/services",
            json={
                "provider_guid": alpha.provider_guid,
                "name": "bad",
                "endpoints": [refused_url()],
            },
        )
        bad_guid = r.json()["guid"]
        code, output = as_team(
            sqlite_hub, alpha, "dryrun", "--dataset", str(pets), "--service", bad_guid, "--watch"
        )
        assert code == 1 and "did not pass" in output
        failed_run = output.split("dry run ")[1].split()[0]
        code, output = as_team(sqlite_hub, alpha, "failures", failed_run)
        assert code == 0, output
        assert f"connect_error {len(LABELS)}" in output
        # The hub's groups, one line each, with the request ids to grep the log for.
        team_key = {"Authorization": f"Bearer {alpha.api_key}"}
        groups = c.get(f"/api/v1/runs/{failed_run}/failures", headers=team_key).json()
        assert groups and sum(g["count"] for g in groups) == len(LABELS)
        group_lines = [line for line in lines(output) if " x connect_error: " in line]
        assert len(group_lines) == len(groups)
        for group, line in zip(groups, group_lines, strict=True):
            assert line.strip().startswith(f"{group['count']} x connect_error: {group['detail']}")
            assert all(request_id in line for request_id in group["request_ids"])
        code, output = as_team(sqlite_hub, alpha, "failures", failed_run, "--json")
        [service] = json.loads(output)["services"]
        assert service["groups"] == groups

        # The quota: a third run is allowed, the fourth is refused saying when.
        assert as_team(sqlite_hub, alpha, "dryrun", "--dataset", "pets")[0] == 0
        code, output = as_team(sqlite_hub, alpha, "dryrun", "--dataset", "pets")
        assert code == 1
        assert "the next one is allowed at" in output and "Z" in output


def test_a_team_manages_its_service(sqlite_hub: LiveServer) -> None:
    with recognizer(answer=CAT_DOG) as good, httpx.Client(base_url=sqlite_hub.url) as c:
        team = register_team(c, [good.url], name="alpha")
        other = register_team(c, [good.url], name="beta")
    svc = ("--service", team.service_guid)
    code, output = as_team(sqlite_hub, team, "service", "show", "--json")
    assert code == 0 and json.loads(output)["services"][0]["guid"] == team.service_guid
    moved = "http://127.0.0.1:9/v2"
    code, output = as_team(sqlite_hub, team, "service", "set-endpoints", moved, *svc)
    assert code == 0 and moved in output
    code, output = as_team(sqlite_hub, team, "service", "disable", *svc, "--json")
    assert code == 0 and json.loads(output)["enabled"] is False
    code, output = as_team(sqlite_hub, team, "service", "enable", *svc, "--json")
    assert json.loads(output)["enabled"] is True
    code, output = as_team(sqlite_hub, team, "service", "rotate-secret", "--yes", *svc, "--json")
    assert code == 0
    secret = json.loads(output)["signing_secret"]
    assert secret and secret != team.signing_secret
    code, output = as_team(sqlite_hub, team, "service", "disable", "--service", other.service_guid)
    assert code == 1 and "refused" in output


def test_recog_labels_prints_top1_and_top5(sqlite_hub: LiveServer, tmp_path: Path) -> None:
    root = tmp_path / "labelled"
    for n, label in enumerate(["cat", "cat", "Dog", "bird"]):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{n}.png").write_bytes(png_bytes(color=(n * 50, 10, 10)))
    with recognizer(answer=CAT_DOG) as good, httpx.Client(base_url=sqlite_hub.url) as c:
        team = register_team(c, [good.url])
        code, output = recog(sqlite_hub, team, root, extra=("--labels",))
        assert code == 0, output
        # cat, cat right at top-1; Dog (case folded) at top-5; bird nowhere.
        assert lines(output)[-1] == (
            "accuracy on 4 labelled images: top-1 2/4 (50.0%), top-5 3/4 (75.0%)"
        )
        code, output = recog(sqlite_hub, team, root, extra=("--labels", "--json"))
        accuracy = json.loads(lines(output)[-1])
        assert (accuracy["top1"], accuracy["top5"], accuracy["images"]) == (0.5, 0.75, 4)
        code, output = recog(sqlite_hub, team, root / "cat" / "0.png", extra=("--labels",))
        assert code == 1 and "DIR/<label>/<image>" in output


def test_results_of_an_evaluation_the_team_takes_part_in_say_why_not(
    sqlite_hub: LiveServer, sqlite_url: str, tmp_path: Path
) -> None:
    pets = seed_dataset(sqlite_url, tmp_path / "data", LABELS, name="pets")
    with httpx.Client(base_url=sqlite_hub.url, headers=admin_headers(), timeout=30) as c:
        alpha = register_team(c, ["http://127.0.0.1:9"], name="alpha")
        r = c.post(
            "/api/v1/runs",
            json={"dataset": pets, "phase": "evaluation", "services": [alpha.service_guid]},
        )
        assert r.status_code == 201, r.text
        run_id = str(r.json()["id"])

    code, output = as_team(sqlite_hub, alpha, "results", run_id)
    assert code == 1, output
    said = " ".join(output.split())
    assert "is an evaluation: its results stay hidden" in said, said
    # Not "use the key of the provider that owns the service": it is the team's own.
    assert "owns the service" not in said
    assert "start a dry run (`recoghub-cli dryrun`)" in said


def test_a_team_dry_run_takes_the_metric_the_readme_offers(
    sqlite_hub: LiveServer, sqlite_url: str, tmp_path: Path
) -> None:
    pets = seed_dataset(sqlite_url, tmp_path / "data", LABELS, name="pets")
    with httpx.Client(base_url=sqlite_hub.url, headers=admin_headers(), timeout=30) as c:
        alpha = register_team(c, ["http://127.0.0.1:9"], name="alpha")
        c.patch(f"/api/v1/datasets/{pets}", json={"open_to_teams": True})

    code, output = as_team(sqlite_hub, alpha, "dryrun", "--dataset", "pets", "--metric", "top1")
    assert code == 0, output
    code, output = as_team(sqlite_hub, alpha, "runs", "--json")
    [run] = json.loads(output)["runs"]
    assert run["metric"] == "top1"
    code, output = as_team(sqlite_hub, alpha, "dryrun", "--dataset", "pets", "--metric", "top3")
    assert code == 2 and "top5" in output and "micro_ap" in output

"""No CSV the hub writes holds a cell a spreadsheet would run (SPEC §9, issue 17 item 6):
team and service names, tags and raw answers that start like a formula are neutralised
with `'` in every export, and the hub's own numbers are left as numbers."""

import csv
import io
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gateway.cli.main import app as cli_app
from gateway.runs.exports import csv_cell
from tests.builders import ADMIN_TOKEN, admin_headers, bearer, register_team
from tests.runs.api_builders import LABELS, recognizers, seed_dataset, start_run, wait_for
from tests.servers import LiveServer

HYPERLINK = '=HYPERLINK("http://evil.example","x")'
SUM = "@SUM(1+1)*cmd|' /C calc'!A0"
CMD = "=cmd|' /C calc'!A0"
ANSWER = f"{CMD}:0.9;-2+3+cmd|' /C calc'!A0:0.5;+1:0.1"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _assert_nothing_runs(text: str) -> list[str]:
    cells = _cells(text)
    runnable = [c for c in cells if c.startswith(FORMULA_STARTS) and not _is_number(c)]
    assert not runnable, runnable
    return cells


def test_a_cell_is_neutralised_unless_it_is_a_number_of_the_hub() -> None:
    for text in (HYPERLINK, SUM, CMD, "+1", "-0.5", "\tx", "\rx"):
        assert csv_cell(text) == "'" + text
    assert csv_cell("cat") == "cat" and csv_cell(None) == ""
    assert csv_cell(-0.5) == -0.5 and csv_cell(-3) == -3  # numbers the hub computed


def test_every_export_neutralises_formulas(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
    with recognizers(ANSWER, "cat:0.9") as (evil, good), httpx.Client(base_url=hub.url) as c:
        attacker = register_team(c, [evil.url], name=SUM)
        r = c.patch(
            f"/api/v1/services/{attacker.service_guid}",
            json={"name": HYPERLINK},
            headers=bearer(attacker.api_key),
        )
        assert r.status_code == 200, r.text
        victim = register_team(c, [good.url], name="victim")
        run = start_run(
            c, dataset_id, "evaluation", services=[attacker.service_guid, victim.service_guid]
        )
        wait_for(c, run["id"], {"completed"})
        base = f"/api/v1/runs/{run['id']}"
        r = c.post(f"{base}/publish", json={"published": True}, headers=admin_headers())
        assert r.status_code == 200, r.text

        exports = {
            "leaderboard (a team)": c.get(
                f"{base}/leaderboard", params={"format": "csv"}, headers=bearer(victim.api_key)
            ),
            "timeline (a team)": c.get(
                f"{base}/timeline",
                params={"format": "csv", "bucket_s": 1},
                headers=bearer(victim.api_key),
            ),
            "leaderboard": c.get(
                f"{base}/leaderboard", params={"format": "csv"}, headers=admin_headers()
            ),
            "results of one service": c.get(
                f"{base}/results",
                params={"format": "csv", "service": attacker.service_guid},
                headers=admin_headers(),
            ),
            "results of the run": c.get(
                f"{base}/results", params={"format": "csv"}, headers=admin_headers()
            ),
        }
        # The CLIs print the hub's CSV as it is.
        printed = {
            what: CliRunner().invoke(
                cli_app,
                ["run", *args, str(run["id"]), "--format", "csv", "--hub", hub.url],
                env={"RECOGHUB_ADMIN_TOKEN": ADMIN_TOKEN},
                catch_exceptions=False,
            )
            for what, args in (("leaderboard", ["leaderboard"]), ("timeline", ["timeline"]))
        }

    for what, result in printed.items():
        assert result.exit_code == 0, result.output
        assert "'" + HYPERLINK in _assert_nothing_runs(result.stdout), what

    for what, response in exports.items():
        assert response.status_code == 200, (what, response.text)
        cells = _assert_nothing_runs(response.text)
        if what.startswith(("leaderboard", "timeline")):
            assert "'" + HYPERLINK in cells and "'" + SUM in cells, what
        else:
            assert "'" + CMD + ":0.9;" in [c[: len(CMD) + 6] for c in cells], what
            assert "'" + ANSWER in cells, what  # the raw answer
    # The hub's numbers stay numbers: latencies and scores are not quoted.
    rows = list(csv.DictReader(io.StringIO(exports["leaderboard"].text)))
    assert all(_is_number(row["latency_p50_ms"]) for row in rows)

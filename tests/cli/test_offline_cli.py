"""`recoghub-cli download` and `submit FILE --format F` against a live hub (SPEC §13): the
images unpacked with images.csv and labels.txt, a file's scores and the submissions
left, a refusal naming its line, and a 202 followed to its scores."""

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from tests.builders import hub_settings, register_team
from tests.challenges.builders import create_challenge, phase_body
from tests.challenges.offline_builders import seed
from tests.cli.test_team_challenges import team_cli
from tests.servers import LiveServer, live_server

PETS = {"img-a": ["cat"], "img-b": ["cat"], "img-c": ["dog"], "img-d": ["bird"]}


@pytest.fixture
def slow_hub(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A hub that answers 202 at once and takes a second to score."""
    settings = hub_settings(
        database_url,
        tmp_path / "data",
        submission_wait_s=0.0,
        submission_scoring_delay_s=1.0,
    )
    with live_server(create_app(settings)) as server:
        yield server


def test_a_team_downloads_and_submits_files_from_the_command_line(
    slow_hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    hub = slow_hub
    seed(database_url, tmp_path / "data", PETS)
    with httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [], name="alpha")
        create_challenge(c, "pets-cup", phase_body(kind="offline", submission_limit={"total": 3}))
    out_dir = tmp_path / "phase"
    code, out = team_cli(hub, alpha, "download", "pets-cup", "final", "-o", str(out_dir))
    assert code == 0, out
    assert "4 images in" in out
    with (out_dir / "images.csv").open() as index:
        rows = list(csv.DictReader(index))
    assert len(rows) == 4 and all((out_dir / r["file"]).is_file() for r in rows)
    assert (out_dir / "labels.txt").read_text() == "bird\ncat\ndog\n"

    refused = tmp_path / "bad.txt"
    refused.write_text("cat\nzebra\n")
    code, out = team_cli(
        hub, alpha, "submit", "pets-cup", "final", str(refused), "--format", "ilsvrc"
    )
    assert code == 1
    assert "bad.txt refused: line 2" in out and "does not count" in out

    good = tmp_path / "predictions.txt"
    good.write_text("cat\ndog cat\ndog\n")  # a, c right at top-1; b at top-5; d missed
    code, out = team_cli(hub, alpha, "submit", "pets-cup", "final", str(good), "--format", "ilsvrc")
    assert code == 0, out
    assert "accepted; scoring" in out  # a 202, followed to its scores with its progress:
    assert re.search(r"^scoring: [0-4]/4 images scored$", out, re.M), out
    assert "scored on all images: top1 50.0%, top5 75.0%\n" in out
    assert "1 made, 2 left" in out

    code, out = team_cli(
        hub, alpha, "submit", "pets-cup", "final", str(good), "--format", "ilsvrc", "--json"
    )
    assert code == 0, out
    answer = json.loads(out)
    assert answer["state"] == "scored" and answer["yours"]["left"] == 1

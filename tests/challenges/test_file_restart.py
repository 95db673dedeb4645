"""A hub stopped while a prediction file is `scoring` finishes it when it starts again
(SPEC §13): a real `recoghub serve`, killed with -9 mid-scoring (held there by the
test-only RECOGHUB_SUBMISSION_SCORING_DELAY_S), then started again: the submission is
scored once, its results written once, the kept file deleted. Files are scored by the
API process, so both serves run `--no-worker` (a dispatch worker child and its recording
process would only take the CPU the two starts and the scoring need)."""

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from gateway.challenges.models import Submission
from gateway.db import make_engine
from gateway.migrate import upgrade
from gateway.runs.models import Run, WorkItem
from tests.builders import ADMIN_TOKEN, admin_headers, bearer, register_team
from tests.challenges.builders import API, create_challenge, phase_body
from tests.challenges.offline_builders import download, seed, upload
from tests.cli.test_hub_commands import RECOGHUB, ROOT, STARTED, WAIT_S, Stderr, environment
from tests.cli.test_watch_restart import free_port

PETS = {"img-a": ["cat"], "img-b": ["cat"], "img-c": ["dog"], "img-d": ["bird"]}


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _counts(database_url: str) -> tuple[int, int, int]:
    """(submissions, runs, work items) in the database."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return (
                conn.execute(select(func.count()).select_from(Submission)).scalar_one(),
                conn.execute(select(func.count()).select_from(Run)).scalar_one(),
                conn.execute(select(func.count()).select_from(WorkItem)).scalar_one(),
            )
    finally:
        engine.dispose()


def test_a_restarted_hub_finishes_a_file_left_scoring_once(
    database_url: str, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    data_dir = tmp_path / "data"

    def serve(delay_s: str) -> subprocess.Popen[str]:
        env = environment(
            tmp_path,
            PYTHONPATH=str(ROOT),
            RECOGHUB_DATABASE_URL=database_url,
            RECOGHUB_DATA_DIR=str(data_dir),
            RECOGHUB_ADMIN_TOKEN=ADMIN_TOKEN,
            RECOGHUB_SUBMISSION_WAIT_S="0.5",
            RECOGHUB_SUBMISSION_SCORING_DELAY_S=delay_s,
        )
        proc = subprocess.Popen(
            [*RECOGHUB, "serve", "--port", str(port), "--no-worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        Stderr(proc).wait_for(STARTED)
        return proc

    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    first = serve("600")
    seed(database_url, data_dir, PETS)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=60) as c:
        alpha = register_team(c, [], name="alpha")
        create_challenge(c, "pets-cup", phase_body(kind="offline"))
        download(c, alpha.api_key)
        r = upload(c, alpha.api_key, b"cat\ncat\ndog\n", "ilsvrc")
        assert r.status_code == 202, r.text
        accepted = r.json()
        assert accepted["state"] == "scoring" and accepted["scores"] is None
    assert len(list((data_dir / "submissions").iterdir())) == 1  # kept until scored
    first.kill()
    first.wait()
    assert _counts(database_url) == (1, 0, 0)  # accepted, nothing of its scoring written

    serve("0")
    with httpx.Client(base_url=url, timeout=60) as c:
        deadline = time.monotonic() + WAIT_S
        path = f"{API}/pets-cup/phases/final/submissions/{accepted['id']}"
        while time.monotonic() < deadline:
            found = c.get(path, headers=bearer(alpha.api_key)).json()
            if found["state"] != "scoring":
                break
            time.sleep(0.2)
        assert found["state"] == "scored", found
        assert found["scores"]["top1"] == pytest.approx(0.75)
        listed = c.get(f"{API}/pets-cup/phases/final/submissions", headers=bearer(alpha.api_key))
        assert [s["id"] for s in listed.json()] == [accepted["id"]]
        results = c.get(f"/api/v1/runs/{found['run_id']}/results", headers=admin_headers())
        rows = [json.loads(line) for line in results.text.splitlines() if line.strip()]
        assert len(rows) == 4
    assert _counts(database_url) == (1, 1, 4)
    assert list((data_dir / "submissions").iterdir()) == []

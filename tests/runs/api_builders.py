"""Builders for the run API tests: a seeded dataset, live recognizers, runs via the API."""

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from tests.builders import ADMIN_TOKEN, Team, admin_headers, png_bytes, register_team
from tests.servers import LiveServer, live_server

# Keys and labels of the small dataset most tests use. A recognizer answering
# `cat:0.9;dog:0.5` gets top-1 2/4 and top-5 3/4 on it.
LABELS = {"img-a": "cat", "img-b": "cat", "img-c": "dog", "img-d": "bird"}
CAT_DOG = "cat:0.9;dog:0.5"
RESULT_KEYS = {"key", "outcome", "attempts", "latency_ms", "raw", "tags", "true_rank"}


def seed_dataset(
    database_url: str, data_dir: Path, labels: dict[str, str], name: str = "pets"
) -> int:
    """Store a classification dataset the way an import leaves it: rows and image files."""
    from sqlalchemy.orm import Session

    from gateway.datasets.models import Dataset, DatasetImage
    from gateway.datasets.storage import image_path
    from gateway.db import make_engine

    engine = make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            dataset = Dataset(
                name=name, format="folder", images=len(labels), labels=len(set(labels.values()))
            )
            session.add(dataset)
            session.flush()
            for position, (key, label) in enumerate(labels.items()):
                data = png_bytes(8 + position, 8, (position * 7 % 256, 40, 90))
                sha = hashlib.sha256(data).hexdigest()
                path = image_path(data_dir, sha)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                session.add(
                    DatasetImage(
                        dataset_id=dataset.id,
                        position=position,
                        key=key,
                        truth=[label],
                        sha256=sha,
                        content_type="image/png",
                        size=len(data),
                    )
                )
            return dataset.id
    finally:
        engine.dispose()


@contextmanager
def recognizers(*answers: str, **config: Any) -> Iterator[list[LiveServer]]:
    """One live dummy recognizer per answer (with the same extra config each)."""
    from sample_recognizer.app import create_recognizer_app
    from sample_recognizer.config import RecognizerConfig

    with ExitStack() as stack:
        yield [
            stack.enter_context(
                live_server(
                    create_recognizer_app(RecognizerConfig(backend="dummy", answer=a, **config))
                )
            )
            for a in answers
        ]


def start_run(client: httpx.Client, dataset: int | str, phase: str, **body: Any) -> dict[str, Any]:
    r = client.post(
        "/api/v1/runs", json={"dataset": dataset, "phase": phase, **body}, headers=admin_headers()
    )
    assert r.status_code == 201, r.text
    run: dict[str, Any] = r.json()
    return run


def wait_for(
    client: httpx.Client, run_id: int, states: set[str], timeout: float = 30.0
) -> dict[str, Any]:
    """Poll the run until its state is one of `states`."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/api/v1/runs/{run_id}", headers=admin_headers())
        assert r.status_code == 200, r.text
        run: dict[str, Any] = r.json()
        if run["state"] in states:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['state']}: {run}"
        time.sleep(0.05)


def poll_until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy; the bound only stops a hung test."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)
    return value


def results_of(
    client: httpx.Client, run_id: int, service: str, fmt: str = "jsonl", token: str = ADMIN_TOKEN
) -> httpx.Response:
    return client.get(
        f"/api/v1/runs/{run_id}/results",
        params={"service": service, "format": fmt},
        headers={"Authorization": f"Bearer {token}"},
    )


def parse_jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


def row_by_service(rows: list[dict[str, Any]], team: Team) -> dict[str, Any]:
    (row,) = [r for r in rows if r["service_guid"] == team.service_guid]
    return row


def reach_deadline(database_url: str, run_id: int) -> None:
    """Bring a run's deadline forward to now in the database instead of waiting for it
    (the hub's workers see it on their next tick); the caller first waits, by condition,
    for the state it wants the run in at its deadline."""
    from sqlalchemy.orm import Session

    from gateway.db import make_engine, utcnow
    from gateway.runs.models import Run

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            run = session.get(Run, run_id)
            assert run is not None and run.deadline is not None
            run.deadline = utcnow()
            session.commit()
    finally:
        engine.dispose()


def wait_for_run(client: httpx.Client, run_id: int, state: str) -> dict[str, Any]:
    """Poll the run (as the organizer) until it is in `state`, at most 30 s; its body."""
    deadline = time.monotonic() + 30
    while True:
        body: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}", headers=admin_headers()).json()
        if body["state"] == state:
            return body
        assert time.monotonic() < deadline, f"run {run_id} never reached {state}: {body}"
        time.sleep(0.05)


class TwoRuns(NamedTuple):
    """Three teams: alpha and beta in a dry run and an evaluation, both completed (not
    published); gamma in neither."""

    alpha: Team
    beta: Team
    gamma: Team
    dry: int
    evaluation: int


def two_runs_of_three_teams(
    client: httpx.Client, dataset_id: int, a_url: str, b_url: str
) -> TwoRuns:
    """`TwoRuns` on `dataset_id`: alpha and gamma answer at `a_url`, beta at `b_url`."""
    alpha = register_team(client, [a_url], name="alpha")
    beta = register_team(client, [b_url], name="beta")
    gamma = register_team(client, [a_url], name="gamma")
    both = [alpha.service_guid, beta.service_guid]
    dry = start_run(client, dataset_id, "dryrun", services=both)["id"]
    evaluation = start_run(client, dataset_id, "evaluation", services=both)["id"]
    wait_for(client, dry, {"completed"})
    wait_for(client, evaluation, {"completed"})
    return TwoRuns(alpha, beta, gamma, dry, evaluation)

"""The reads polled during a run (`gateway.runs.polled`) answer what FastAPI's routes
answer: for every caller, the same status, type and bytes, on both databases."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.builders import ADMIN_TOKEN, admin_headers, bearer, hub_settings
from tests.runs.api_builders import (
    CAT_DOG,
    LABELS,
    recognizers,
    seed_dataset,
    two_runs_of_three_teams,
)
from tests.servers import LiveServer, live_server


@pytest.fixture
def routed(database_url: str, tmp_path: Path, hub: LiveServer) -> Iterator[LiveServer]:
    """A second hub on `hub`'s database whose app has no `PolledReads`: every request
    goes through FastAPI's routing, as before the shortcut."""
    from gateway.app import create_app
    from gateway.runs.polled import PolledReads

    app = create_app(hub_settings(database_url, tmp_path / "data", embedded_worker=False))
    app.user_middleware = [m for m in app.user_middleware if m.cls is not PolledReads]
    with live_server(app) as server:
        yield server


def test_polled_reads_answer_as_the_routes_do_for_every_caller(
    hub: LiveServer, routed: LiveServer, database_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
    with (
        recognizers(CAT_DOG, "cat:0.5") as (ra, rb),
        httpx.Client(base_url=hub.url) as fast,
        httpx.Client(base_url=routed.url) as slow,
    ):
        alpha, _, gamma, dry, evaluation = two_runs_of_three_teams(fast, dataset_id, ra.url, rb.url)

        callers = {
            "organizer": admin_headers(),
            "alpha": bearer(alpha.api_key),
            "gamma, in no run": bearer(gamma.api_key),
            "no token": {},
            "unknown token": bearer("rk_" + "0" * 40),
            "not a bearer": {"Authorization": f"Basic {ADMIN_TOKEN}"},
        }
        paths = [
            f"/api/v1/runs/{run_id}{tail}"
            for run_id in (dry, evaluation, 2_147_483_647)
            for tail in ("", "/leaderboard")
        ]
        # Left to the routes, answered the same: another spelling of the id, an id out of
        # range, a query string (CSV), a trailing slash.
        paths += [
            f"/api/v1/runs/0{dry}",
            "/api/v1/runs/2147483648",
            f"/api/v1/runs/{dry}/leaderboard?format=csv",
            f"/api/v1/runs/{dry}/",
        ]
        statuses = set()
        for path in paths:
            for who, headers in callers.items():
                expected = slow.get(path, headers=headers)
                got = fast.get(path, headers=headers)
                seen = (path, who, got.status_code, got.text[:200])
                assert got.status_code == expected.status_code, seen
                assert got.headers.get("content-type") == expected.headers.get("content-type")
                assert got.headers.get("www-authenticate") == expected.headers.get(
                    "www-authenticate"
                )
                assert got.content == expected.content, seen
                statuses.add(got.status_code)
        # The answers compared include every kind a caller can get.
        assert {200, 401, 403, 404, 422} <= statuses

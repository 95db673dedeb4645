"""The dashboard's leaderboard says when the organizer re-sent a service's images: a
`re-sent n` badge on its row and a note under the table (README, "Re-sending")."""

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from gateway.app import create_app
from tests.builders import ADMIN_TOKEN, admin_headers, hub_settings, register_team
from tests.runs.api_builders import CAT_DOG, LABELS, recognizers, seed_dataset, wait_for
from tests.servers import live_server
from tests.web.builders import sign_in, team_row

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def test_a_re_sent_service_is_marked_on_the_leaderboard(
    page: "Page", tmp_path: Path, refused_url: Callable[[], str]
) -> None:
    from playwright.sync_api import expect

    database_url = f"sqlite:///{tmp_path / 'hub.db'}"
    settings = hub_settings(database_url, tmp_path / "data", breaker_failures=0, max_attempts=1)
    with (
        live_server(create_app(settings)) as hub,
        recognizers(CAT_DOG) as (rec,),
        httpx.Client(base_url=hub.url, headers=admin_headers()) as c,
    ):
        dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
        team = register_team(c, [refused_url()], name="Comeback")
        run = c.post(
            "/api/v1/runs",
            json={"dataset": dataset_id, "phase": "evaluation", "services": [team.service_guid]},
        ).json()
        wait_for(c, run["id"], {"completed"})
        moved = c.patch(f"/api/v1/services/{team.service_guid}", json={"endpoints": [rec.url]})
        assert moved.status_code == 200, moved.text
        resent = c.post(
            f"/api/v1/runs/{run['id']}/resend",
            json={"service_guid": team.service_guid, "outcomes": ["connect_error"]},
        )
        assert resent.json()["images"] == len(LABELS), resent.text
        wait_for(c, run["id"], {"completed"})

        sign_in(page, hub.url, ADMIN_TOKEN, f"#/runs/{run['id']}")
        row = team_row(page, "ranking", team)
        expect(row.locator(".badge.resent")).to_have_text(f"re-sent {len(LABELS)}")
        expect(page.locator("#board-resent")).to_contain_text("sent again")

"""The dashboard and re-sending (README, "Re-sending"): the organizer re-sends a
service's images from the run's page, and the leaderboard says when images were re-sent:
a `re-sent n` badge on its row and a note under the table."""

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from gateway.app import create_app
from tests.builders import ADMIN_TOKEN, admin_headers, hub_settings, register_team
from tests.runs.api_builders import (
    CAT_DOG,
    LABELS,
    parse_jsonl,
    recognizers,
    results_of,
    seed_dataset,
    wait_for,
)
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


def test_the_organizer_re_sends_a_service_s_images_from_the_run_page(
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
            json={"dataset": dataset_id, "phase": "dryrun", "services": [team.service_guid]},
        ).json()
        wait_for(c, run["id"], {"completed"})
        moved = c.patch(f"/api/v1/services/{team.service_guid}", json={"endpoints": [rec.url]})
        assert moved.status_code == 200, moved.text

        sign_in(page, hub.url, ADMIN_TOKEN, f"#/runs/{run['id']}")
        card = page.locator("#resend")
        expect(card.locator("#resend-history")).to_contain_text("No images re-sent.")
        card.locator("#resend-service").select_option(team.service_guid)
        # Nothing chosen: the hub's own refusal, in its words, and nothing re-sent.
        card.get_by_role("button", name="Re-send").click()
        page.locator("#confirm-ok").click()
        expect(card.locator("#resend-answer")).to_contain_text(
            "body.outcomes: List should have at least 1 item"
        )
        expect(card.locator("#resend-answer")).to_contain_text("(invalid_input)")

        card.get_by_label("connect_error").check()
        card.get_by_role("button", name="Re-send").click()
        expect(page.locator("dialog#confirm")).to_contain_text("recorded connect_error")
        page.locator("#confirm-ok").click()
        expect(card.locator("#resend-answer")).to_contain_text(
            f"Re-sent {len(LABELS)} images of Comeback"
        )
        expect(card.locator("#resend-history tbody tr")).to_have_count(len(LABELS))
        expect(card.locator("#resend-history tbody")).to_contain_text("connect_error")
        expect(team_row(page, "progress", team).locator(".status")).to_have_text("passed")

        wait_for(c, run["id"], {"completed"})
        results = parse_jsonl(results_of(c, run["id"], team.service_guid).text)
        assert {r["key"]: r["outcome"] for r in results} == dict.fromkeys(LABELS, "ok")

        # A team's page of the same run offers no re-send.
        page.evaluate("sessionStorage.clear()")
        page.goto("about:blank")  # the sign-in below loads the page afresh
        sign_in(page, hub.url, team.api_key, f"#/runs/{run['id']}")
        expect(team_row(page, "progress", team)).to_be_visible()
        expect(page.locator("#resend")).to_have_count(0)
        expect(page.get_by_role("button", name="Re-send")).to_have_count(0)

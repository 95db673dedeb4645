"""A run's evaluation window on the dashboard, in a real browser against a live hub and a
live recognizer: a queued run says when it starts, a running one its deadline, and a run
the deadline ended says so on the runs list, its page and its leaderboard. Times are in
the browser's local time (here Asia/Kolkata, UTC+05:30) with the UTC ISO as their title."""

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway.cli.run_list import wire
from tests.builders import ADMIN_TOKEN, admin_headers, hub_settings, register_team
from tests.runs.api_builders import reach_deadline, wait_for_run
from tests.web.builders import StepGate, gated_recognizer, import_clickture, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

pytestmark = pytest.mark.browser

ZONE = "Asia/Kolkata"


@dataclass
class World:
    url: str
    database_url: str
    client: httpx.Client
    queued: dict[str, str]  # a run waiting for its start_at an hour away
    timed: dict[str, str]  # a run under way with a deadline an hour away


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from gateway.app import create_app
    from tests.servers import live_server

    tmp = tmp_path_factory.mktemp("window")
    database_url = f"sqlite:///{tmp / 'hub.db'}"
    settings = hub_settings(database_url, tmp / "data", request_timeout_s=300.0)
    gate = StepGate()  # the recognizer answers nothing: only the deadline ends the run
    with ExitStack() as stack:
        url = stack.enter_context(live_server(create_app(settings))).url
        client = stack.enter_context(httpx.Client(base_url=url, headers=admin_headers()))
        team = register_team(client, [gated_recognizer(stack, "cat:0.9", gate)], name="Alpha")
        pets = import_clickture(client, tmp, "pets", ["cat", "dog", "cat"])
        later = wire(datetime.now(UTC) + timedelta(hours=1))
        runs = [
            client.post(
                "/api/v1/runs",
                json={"dataset": pets, "phase": "evaluation", "services": [team.service_guid],
                      **window},
            ).json()
            for window in ({"start_at": later}, {"deadline": later})
        ]  # fmt: skip
        wait_for_run(client, runs[1]["id"], "running")
        try:
            yield World(url, database_url, client, *runs)
        finally:
            gate.open()  # no recognizer request left hanging at shutdown


@pytest.fixture
def local_page(browser: "Browser") -> Iterator["Page"]:
    """A tab whose local time zone is not UTC, failing the test on a script error."""
    context = browser.new_context(timezone_id=ZONE, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, errors


def assert_local_time(page: "Page", shown: "Locator", iso: str) -> None:
    """`shown` is a <time> with the UTC ISO as its title and the moment in local time."""
    from playwright.sync_api import expect

    expect(shown).to_have_attribute("title", iso)
    text = shown.text_content() or ""
    local = datetime.fromisoformat(iso).astimezone(ZoneInfo(ZONE))
    style = "{dateStyle: 'medium', timeStyle: 'medium'}"
    expected = page.evaluate(f"iso => new Date(iso).toLocaleString(undefined, {style})", iso)
    assert text == expected
    # Kolkata is half an hour off UTC: the minutes say whose time it is.
    assert f"{local.minute:02d}:{local.second:02d}" in text


def test_a_queued_run_says_when_it_starts(local_page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    page, run = local_page, world.queued
    sign_in(page, world.url, ADMIN_TOKEN)
    state = page.locator(f'#runs tr[data-run="{run["id"]}"] td.state')
    expect(state).to_contain_text("queued")
    expect(state).to_contain_text("starts at ")
    assert_local_time(page, state.locator("time"), run["start_at"])

    page.goto(f"{world.url}/#/runs/{run['id']}")
    expect(page.locator("#window")).to_contain_text("starts at ")
    assert_local_time(page, page.locator("#window time"), run["start_at"])
    expect(page.locator("#deadline-note")).to_have_count(0)


def test_a_run_shows_its_deadline_then_that_it_stopped_at_it(
    local_page: "Page", world: World
) -> None:
    from playwright.sync_api import expect

    page, run = local_page, world.timed
    sign_in(page, world.url, ADMIN_TOKEN, f"#/runs/{run['id']}")
    window = page.locator("#window")
    expect(window).to_contain_text("deadline ")
    assert_local_time(page, window.locator("time"), run["deadline"])
    expect(window.locator(".badge.deadline")).to_have_count(0)

    reach_deadline(world.database_url, int(run["id"]))
    # The page follows the run by itself: the badge, the note and the leaderboard's note.
    expect(page.locator("h1 .badge.completed")).to_be_visible()
    expect(window.locator(".badge.deadline")).to_have_text("stopped at its deadline")
    expect(page.locator("#deadline-note")).to_contain_text("stopped at its deadline")
    expect(page.locator("#board-deadline")).to_contain_text("stopped at its deadline")
    stopped = wait_for_run(world.client, int(run["id"]), "completed")
    assert stopped["stopped_at_deadline"]

    page.goto(f"{world.url}/#/runs")
    row = page.locator(f'#runs tr[data-run="{run["id"]}"] td.state')
    expect(row.locator(".badge.deadline")).to_have_text("stopped at its deadline")

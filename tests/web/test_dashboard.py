"""The dashboard in a real browser against a live hub, its embedded worker and live
sample recognizers: what an organizer and a team see after a dry run."""

import base64
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.builders import ADMIN_TOKEN, Team, admin_headers, hub_settings, jpeg_bytes, register_team
from tests.servers import live_server
from tests.web import builders
from tests.web.builders import recognizer, start_run, team_row, wait_until_completed

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

XSS_NAME = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>Mallory'
# Seven images; each team answers one label always, so top-1 = that label's share.
LABELS = ["cat", "cat", "cat", "cat", "dog", "dog", "bird"]
TEAMS: dict[str, dict[str, Any]] = {
    "Alpha Cats": {"answer": "cat:0.9;dog:0.1"},
    "Beta Dogs": {"answer": "dog:0.9;cat:0.1"},
    XSS_NAME: {"answer": "bird:0.9"},
    "Delta Broken": {"answer": "cat:0.9", "bad_rate": 1.0},
}
# Best first, as the leaderboard ranks them by top-1.
RANKING = [
    ("Alpha Cats", "57.1%"),
    ("Beta Dogs", "28.6%"),
    (XSS_NAME, "14.3%"),
    ("Delta Broken", "0.0%"),
]


@dataclass
class World:
    url: str
    run_id: int
    dataset_id: int
    teams: dict[str, Team]
    recognizer_urls: dict[str, str]
    stack: ExitStack


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A hub with four teams, a Clickture dataset imported through the API, and one
    completed dry run ranked by top-1."""
    from gateway.app import create_app

    tmp = tmp_path_factory.mktemp("web")
    tsv = tmp / "pets.tsv"
    tsv.write_text(
        "".join(
            f"{label}\timg{i}\t{base64.b64encode(jpeg_bytes(color=(i * 30, 90, 140))).decode()}\n"
            for i, label in enumerate(LABELS)
        )
    )
    # A breaker that trips on 3 failures in a row, so that a dead team pauses in 7 images.
    settings = hub_settings(f"sqlite:///{tmp / 'hub.db'}", tmp / "data", breaker_failures=3)
    with ExitStack() as stack:
        url = stack.enter_context(live_server(create_app(settings))).url
        client = stack.enter_context(httpx.Client(base_url=url))
        urls = {name: recognizer(stack, **config) for name, config in TEAMS.items()}
        teams = {name: register_team(client, [urls[name]], name=name) for name in TEAMS}
        r = client.post(
            "/api/v1/datasets",
            json={"name": "pets", "format": "clickture", "path": str(tsv)},
            headers=admin_headers(),
        )
        assert r.status_code == 201, r.text
        dataset_id = r.json()["id"]
        run_id = start_run(client, dataset=dataset_id, metric="top1")
        wait_until_completed(client, run_id)
        yield World(url, run_id, dataset_id, teams, urls, stack)


def sign_in(page: "Page", world: World, token: str, where: str = "") -> None:
    builders.sign_in(page, world.url, token, where)


def test_admin_sees_the_run_and_each_team_done(page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    sign_in(page, world, ADMIN_TOKEN)
    row = page.locator(f'#runs tr[data-run="{world.run_id}"]')
    expect(row).to_contain_text("pets")
    expect(row).to_contain_text("dryrun")
    expect(row).to_contain_text("completed")
    expect(row).to_contain_text("28 / 28")

    row.get_by_role("link", name=f"#{world.run_id}").click()
    expect(page.locator("#view h1")).to_contain_text(f"Run #{world.run_id}")
    expect(page.locator("#progress tr[data-service]")).to_have_count(len(TEAMS))
    for name, team in world.teams.items():
        line = team_row(page, "progress", team)
        expect(line.locator(".team")).to_have_text(name)
        expect(line).to_contain_text("7 / 7")
        expect(line.locator(".status")).to_have_text(
            "failed" if name == "Delta Broken" else "passed"
        )
    broken = team_row(page, "progress", world.teams["Delta Broken"])
    expect(broken).to_contain_text("bad_format 7")
    # The failure reason sits in the row under the team's.
    reason = broken.locator("xpath=following-sibling::tr[1]")
    expect(reason).to_have_class("reason-row")
    expect(reason).to_contain_text("bad_format")


def test_leaderboard_ranks_teams_by_top1_with_charts(
    page: "Page", world: World, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    sign_in(page, world, ADMIN_TOKEN, f"#/runs/{world.run_id}")
    rows = page.locator("#ranking tbody tr")
    expect(rows).to_have_count(len(RANKING))
    expect(rows.locator(".team")).to_have_text([name for name, _ in RANKING])
    expect(rows.locator('td[data-col="top1"]')).to_have_text([top1 for _, top1 in RANKING])
    expect(rows.locator('td[data-col="rank"]')).to_have_text(["1", "2", "3", "4"])
    expect(page.locator("#ranking th.primary")).to_have_text("Top-1")

    charts = page.locator("#leaderboard svg.chart")
    expect(charts).to_have_count(2)
    expect(charts.first.locator("text.value")).to_have_text([top1 for _, top1 in RANKING])
    expect(charts.first.locator("text.label").first).to_have_text("1. Alpha Cats / Alpha Cats-svc")
    expect(charts.nth(1).locator("g")).to_have_count(len(RANKING))
    # Beside the latency figures: how exact they are (SPEC §8).
    board = httpx.get(
        f"{world.url}/api/v1/runs/{world.run_id}/leaderboard", headers=admin_headers()
    ).json()
    uncertainty = board[0]["timing_uncertainty_ms"]
    expect(page.locator("#timing")).to_have_text(
        f"Latencies are exact to about {uncertainty:.1f} ms"
        " (how late the hub's event loop ran while sending): a p50 smaller than that is"
        " still measured, but two p50s closer than that are not told apart."
    )
    # The ranking metric and the tie-breaker, named.
    expect(page.locator("#ranking-rule")).to_have_text(
        f"Ranked by top-1; an equal top-1 is ordered by p50 latency only where the p50s"
        f" differ by more than {uncertainty:.1f} ms (the timing uncertainty), else the rank"
        " is shared."
    )
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)


def test_wrong_token_shows_the_hubs_error(page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    sign_in(page, world, "not-a-real-token")
    expect(page.locator("#error")).to_contain_text("Error 401")
    expect(page.locator("#error")).to_contain_text("unknown token")
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#runs")).to_have_count(0)


def test_provider_key_sees_only_its_own_rows(page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    beta = world.teams["Beta Dogs"]
    sign_in(page, world, beta.api_key, f"#/runs/{world.run_id}")
    expect(page.locator("#progress tr[data-service]")).to_have_count(1)
    expect(team_row(page, "progress", beta)).to_contain_text("Beta Dogs")
    expect(page.locator("#ranking tbody tr")).to_have_count(1)
    expect(page.locator("#ranking .team")).to_have_text("Beta Dogs")
    expect(page.locator('#ranking td[data-col="top1"]')).to_have_text("28.6%")

    page.click("nav >> text=Services")
    expect(page.locator("#services tr[data-service]")).to_have_count(1)
    expect(team_row(page, "services", beta)).to_contain_text("Beta Dogs")
    expect(team_row(page, "services", beta)).to_contain_text("recoghub-v1")


def test_team_name_with_markup_renders_as_text(page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    sign_in(page, world, ADMIN_TOKEN, f"#/runs/{world.run_id}")
    mallory = world.teams[XSS_NAME]
    expect(team_row(page, "progress", mallory).locator(".team")).to_have_text(XSS_NAME)
    expect(team_row(page, "ranking", mallory).locator(".team")).to_have_text(XSS_NAME)
    expect(page.locator("#leaderboard svg.chart").first).to_contain_text("Mallory")
    assert page.locator("#view script, #view img").count() == 0
    assert page.evaluate("window.pwned") is None


def test_service_check_shows_each_instance(page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    sign_in(page, world, ADMIN_TOKEN, "#/services")
    alpha = world.teams["Alpha Cats"]
    team_row(page, "services", alpha).get_by_role("button", name="Check").click()
    report = team_row(page, "services", alpha).locator("xpath=following-sibling::tr[1]")
    expect(report.locator(".verdict")).to_contain_text("every instance is reachable")
    instance = report.locator(".instances tbody tr")
    expect(instance).to_have_count(1)
    expect(instance).to_contain_text(world.recognizer_urls["Alpha Cats"])
    expect(instance.locator("td").nth(1)).to_have_text("HTTP endpoint")
    expect(instance.locator("td").nth(2)).to_have_text("✓ yes")
    expect(instance.locator("td").nth(4)).to_have_text("✓ yes")

    broken = world.teams["Delta Broken"]
    team_row(page, "services", broken).get_by_role("button", name="Check").click()
    report = team_row(page, "services", broken).locator("xpath=following-sibling::tr[1]")
    expect(report.locator(".verdict .badge")).to_have_text("failed")
    expect(report.locator(".instances tbody td").nth(2)).to_have_text("✓ yes")
    expect(report.locator(".instances tbody td").nth(4)).to_have_text("✗ no")
    expect(report.locator(".instances tbody td").nth(5)).to_have_text("bad_format")


def test_run_view_follows_a_running_run(page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    from tests.runs.builders import recognizer_app

    # The recognizer holds every request until the test opens the gate: the page shows
    # the run going on for as long as the test needs, then sees it end.
    gate = threading.Event()
    app, _ = recognizer_app(lambda body: "cat:0.9", gate=gate)
    url = world.stack.enter_context(live_server(app)).url
    try:
        with httpx.Client(base_url=world.url) as client:
            slow = register_team(client, [url], name="Slow Sloths", max_concurrency=1)
            run_id = start_run(client, dataset=world.dataset_id, services=[slow.service_guid])
        sign_in(page, world, ADMIN_TOKEN, f"#/runs/{run_id}")
        state = page.locator("#view h1 .badge")
        line = team_row(page, "progress", slow)
        expect(state).to_have_text("running")
        expect(line.locator(".status")).to_have_text("ongoing")
        expect(line).to_contain_text("0 / 7")
    finally:
        gate.set()
    # The page polls: it reaches the end without a reload.
    expect(state).to_have_text("completed")
    expect(line).to_contain_text("7 / 7")
    expect(line.locator(".status")).to_have_text("passed")
    expect(page.locator("#ranking .team")).to_have_text("Slow Sloths")


def test_a_dead_team_shows_as_down_and_paused(page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    with socket.socket() as held:  # bound, not listening: connections are refused
        held.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{held.getsockname()[1]}"
        with httpx.Client(base_url=world.url) as client:
            dead = register_team(client, [dead_url], name="Gone Gophers", max_concurrency=1)
            run_id = start_run(client, dataset=world.dataset_id, services=[dead.service_guid])
            try:
                sign_in(page, world, ADMIN_TOKEN, f"#/runs/{run_id}")
                line = team_row(page, "progress", dead)
                expect(line.locator(".status")).to_have_text("down")
                expect(line).to_contain_text("paused")
                expect(line).to_contain_text("3 / 7")
                reason = line.locator("xpath=following-sibling::tr[1]")
                expect(reason).to_contain_text("down: 3 requests in a row got no answer")
                expect(page.locator("#view h1 .badge")).to_have_text("running")
            finally:
                client.post(f"/api/v1/runs/{run_id}/cancel", headers=admin_headers())


def test_failures_and_classes_of_a_chosen_service(page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    sign_in(page, world, ADMIN_TOKEN, f"#/runs/{world.run_id}")
    broken = world.teams["Delta Broken"]
    page.locator("#insight-service").select_option(label="Delta Broken / Delta Broken-svc")
    with httpx.Client(base_url=world.url) as client:
        r = client.get(f"/api/v1/runs/{world.run_id}/failures", headers=admin_headers())
        assert r.status_code == 200, r.text
        groups = [g for g in r.json() if g["service_guid"] == broken.service_guid]
        r = client.get(
            f"/api/v1/runs/{world.run_id}/services/{broken.service_guid}/classes",
            headers=admin_headers(),
        )
        assert r.status_code == 200, r.text
        classes = r.json()
    rows = page.locator("#failures tbody tr")
    expect(rows).to_have_count(len(groups))
    expect(rows.locator("td:nth-child(1)")).to_have_text([g["outcome"] for g in groups])
    expect(rows.locator("td:nth-child(3)")).to_have_text([g["detail"] for g in groups])
    expect(rows.locator("td:nth-child(4)")).to_have_text([str(g["count"]) for g in groups])
    assert sum(g["count"] for g in groups) == 7
    assert {g["outcome"] for g in groups} == {"bad_format"}
    # Every answer failed: each label's images all count as failed and wrong.
    labels = page.locator("#classes tbody tr")
    expect(labels).to_have_count(len(classes))
    for c in classes:
        line = page.locator(f'#classes tr[data-label="{c["label"]}"]')
        expect(line.locator("td")).to_have_text(
            [c["label"], str(c["images"]), "0.0%", "0.0%", str(c["images"]), "—"]
        )

    # Another service: its own figures replace them.
    page.locator("#insight-service").select_option(label="Alpha Cats / Alpha Cats-svc")
    expect(page.locator("#failures tbody")).to_have_text("No failures.")
    expect(page.locator('#classes tr[data-label="cat"] td').nth(2)).to_have_text("100.0%")


def test_a_team_is_offered_failures_only_where_it_may_see_them(page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    beta = world.teams["Beta Dogs"]
    with httpx.Client(base_url=world.url) as client:
        evaluation = start_run(
            client, dataset=world.dataset_id, phase="evaluation", services=[beta.service_guid]
        )
        wait_until_completed(client, evaluation)
    # An evaluation: the hub refuses a team its failures, so no button that only errors.
    sign_in(page, world, beta.api_key, f"#/runs/{evaluation}")
    expect(page.locator("#insight-hidden")).to_be_visible()
    expect(page.locator("#insight-hidden")).to_contain_text("stay with the organizer")
    expect(page.locator("#insight-service")).to_be_hidden()
    expect(page.locator("#insight").get_by_role("button", name="Show")).to_be_hidden()
    # Its own dry run: the button is there and works.
    page.goto(f"{world.url}/#/runs/{world.run_id}")
    expect(page.locator("#insight-service")).to_be_visible()
    expect(page.locator("#insight-hidden")).to_be_hidden()
    expect(page.locator("#failures tbody")).to_have_text("No failures.")


def test_a_connected_out_instance_shows_as_such(page: "Page", world: World, tmp_path: Path) -> None:
    """A team behind a firewall (SPEC §10): no endpoint, its recognizer connected out."""
    from playwright.sync_api import expect

    from tests.dialout.support import dialout_recognizer

    with httpx.Client(base_url=world.url) as client:
        team = register_team(client, [], name="Firewalled Foxes")
    with dialout_recognizer(world.url, team, tmp_path, "--answer", "fox:0.9"):
        sign_in(page, world, ADMIN_TOKEN, "#/services")
        row = team_row(page, "services", team)
        expect(row).to_contain_text("none: connects out")
        row.get_by_role("button", name="Check").click()
        report = row.locator("xpath=following-sibling::tr[1]")
        expect(report.locator(".verdict")).to_contain_text("every instance is reachable")
        cells = report.locator(".instances tbody td")
        expect(cells.nth(0)).to_contain_text("dialout:")
        expect(cells.nth(1)).to_have_text("connected out")
        expect(cells.nth(2)).to_have_text("✓ yes")

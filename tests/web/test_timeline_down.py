"""The run page's charts mark when a service was down, in a real browser: a recognizer
goes down mid-run (the breaker pauses it) and comes back, and every chart shades the
interval, which is also listed under the charts."""

from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.builders import ADMIN_TOKEN, admin_headers, hub_settings, register_team
from tests.notify.recognizer import Recognizer
from tests.runs.api_builders import poll_until
from tests.servers import live_server
from tests.web.builders import import_clickture, sign_in, start_run, wait_until_completed

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def down_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, str]]:
    """A completed dry run whose one service was down once and came back: (hub URL, run
    id, the service's label)."""
    from gateway.app import create_app

    tmp = tmp_path_factory.mktemp("down")
    settings = hub_settings(
        f"sqlite:///{tmp / 'hub.db'}",
        tmp / "data",
        breaker_failures=2,
        breaker_probe_s=0.05,
        breaker_probe_max_s=0.2,
        request_timeout_s=0.5,
    )
    recognizer = Recognizer(fail_after=3)
    with ExitStack() as stack:
        url = stack.enter_context(live_server(create_app(settings))).url
        client = stack.enter_context(httpx.Client(base_url=url))
        rec = stack.enter_context(live_server(recognizer.app())).url
        team = register_team(client, [rec], name="Delta", max_concurrency=1)
        dataset = import_clickture(client, tmp, "pets", ["cat"] * 8)
        run_id = start_run(client, dataset=dataset, max_attempts=1)

        def service_down() -> bool:
            run = client.get(f"/api/v1/runs/{run_id}", headers=admin_headers()).json()
            return bool(run["services"][0]["status"] == "down")

        poll_until(service_down, "the service to be down", 60)
        recognizer.up.set()
        wait_until_completed(client, run_id)
        yield url, run_id, f"Delta / {team.service_guid and 'Delta-svc'}"


def test_the_charts_shade_the_interval_a_service_was_down(
    page: "Page", down_run: tuple[str, int, str]
) -> None:
    from playwright.sync_api import expect

    url, run_id, label = down_run
    timeline = httpx.get(f"{url}/api/v1/runs/{run_id}/timeline", headers=admin_headers()).json()
    (interval,) = timeline["services"][0]["down"]
    assert interval["came_back"] is True and interval["end_t_s"] >= interval["t_s"]

    sign_in(page, url, ADMIN_TOKEN, f"#/runs/{run_id}")
    for chart in ("throughput", "latency", "failures"):
        figure = page.locator(f'#timeline figure[data-chart="{chart}"]')
        expect(figure.locator("canvas").first).to_be_visible()
        expect(figure).to_have_attribute("data-down-bands", "1")
    listed = page.locator("#timeline ul.down-intervals li")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text(f"{label} was down from {round(interval['t_s'])} s")
    expect(listed).to_contain_text(f"to {round(interval['end_t_s'])} s")

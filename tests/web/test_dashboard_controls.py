"""The dashboard's controls in a real browser against a live hub and live recognizers:
the organizer starts, watches, cancels, resumes and publishes runs and downloads their
exports; a team starts its own dry runs and sees only its own things."""

import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.builders import ADMIN_TOKEN, Team, admin_headers, bearer, hub_settings, register_team
from tests.servers import live_server
from tests.web.builders import (
    StepGate,
    gated_recognizer,
    import_clickture,
    recognizer,
    sign_in,
    start_run,
    team_row,
    wait_until_completed,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Download, Locator, Page, Request

pytestmark = pytest.mark.browser

LABELS = ["cat", "cat", "cat", "cat", "dog", "dog", "bird"]


@dataclass
class World:
    url: str
    client: httpx.Client
    gate: StepGate
    alpha: Team  # answers only when the test lets it
    beta: Team
    gamma: Team
    pets: int  # dataset ids
    small: int
    run_id: int  # a completed dry run of beta and gamma
    beta_only_run: int


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from gateway.app import create_app

    tmp = tmp_path_factory.mktemp("controls")
    # The gated recognizer answers when the test says: no request times out meanwhile.
    settings = hub_settings(f"sqlite:///{tmp / 'hub.db'}", tmp / "data", request_timeout_s=60.0)
    gate = StepGate()
    with ExitStack() as stack:
        url = stack.enter_context(live_server(create_app(settings))).url
        client = stack.enter_context(httpx.Client(base_url=url))
        alpha_url = gated_recognizer(stack, "cat:0.9;dog:0.1", gate)
        alpha = register_team(client, [alpha_url], name="Alpha Cats", max_concurrency=1)
        beta = register_team(
            client, [recognizer(stack, answer="dog:0.9;cat:0.1")], name="Beta Dogs"
        )
        gamma = register_team(client, [recognizer(stack, answer="cat:0.8")], name="Gamma Owls")
        pets = import_clickture(client, tmp, "pets", LABELS)
        small = import_clickture(client, tmp, "pets-small", LABELS[3:6])
        run_id = start_run(client, dataset=pets, services=[beta.service_guid, gamma.service_guid])
        beta_only_run = start_run(client, dataset=pets, services=[beta.service_guid])
        wait_until_completed(client, run_id)
        wait_until_completed(client, beta_only_run)
        try:
            yield World(url, client, gate, alpha, beta, gamma, pets, small, run_id, beta_only_run)
        finally:
            gate.open()  # no recognizer request left hanging at shutdown


def wait_for(read: Callable[[], object], expected: object, what: str) -> None:
    """Poll `read()` until it answers `expected` (at most 10 s, like the page expectations)."""
    deadline = time.monotonic() + 10
    while (seen := read()) != expected:
        assert time.monotonic() < deadline, f"{what}: {seen!r}, not {expected!r}"
        time.sleep(0.05)


def charted_answers(page: "Page", label: str) -> float:
    """What the throughput chart's figures say `label` answered: images/s per bucket times
    the bucket width, summed."""
    caption = page.locator("#timeline h2 .sub").text_content() or ""
    width = float(re.search(r"buckets of ([\d.]+) s", caption).group(1))  # type: ignore[union-attr]
    table = page.locator('#timeline figure[data-chart="throughput"] table.figures')
    # Read as text content: the table sits in a closed <details>, not rendered.
    headers = table.locator("thead th").all_text_contents()
    if label not in headers:
        return 0.0
    column = headers.index(label)
    cells = table.locator(f"tbody tr td:nth-child({column + 1})").all_text_contents()
    return sum(float(c) for c in cells if c != "—") * width


def is_start(request: "Request") -> bool:
    return request.method == "POST" and request.url.endswith("/api/v1/runs")


def downloaded(page: "Page", click: "Locator") -> bytes:
    with page.expect_download() as info:
        click.click()
    download: Download = info.value
    return Path(download.path()).read_bytes()


def test_admin_starts_watches_cancels_and_resumes_a_dry_run(page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    alpha = world.alpha
    label = "Alpha Cats / Alpha Cats-svc"
    sign_in(page, world.url, ADMIN_TOKEN)
    expect(page.locator("#who")).to_have_text("organizer")
    form = page.locator("#start-run")
    form.locator("select[name=dataset]").select_option(label="pets (7 images)")
    form.locator("select[name=phase]").select_option("dryrun")
    form.locator("select[name=metric]").select_option("top1")
    form.locator(f'input[value="{alpha.service_guid}"]').check()
    form.locator("input[name=concurrency]").fill("1")
    with page.expect_request(is_start) as sent:
        form.get_by_role("button", name="Start run").click()
    # The schedule fields were left empty: they are not sent at all.
    assert sent.value.post_data_json == {
        "dataset": world.pets,
        "phase": "dryrun",
        "metric": "top1",
        "services": [alpha.service_guid],
        "concurrency": 1,
    }

    expect(page).to_have_url(re.compile(r"#/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    run = world.client.get(f"/api/v1/runs/{run_id}", headers=admin_headers()).json()
    assert (run["dataset"], run["phase"], run["metric"]) == ("pets", "dryrun", "top1")
    assert [s["service_guid"] for s in run["services"]] == [alpha.service_guid]
    state = page.locator("#view h1 .badge").first
    line = team_row(page, "progress", alpha)
    expect(state).to_have_text("running")
    expect(line).to_contain_text("0 / 7")
    expect(page.locator("#timeline .note")).to_have_text("No answers yet.")

    # One answer, then two more: the chart follows without a reload.
    world.gate.release(1)
    throughput = page.locator('#timeline figure[data-chart="throughput"]')
    expect(throughput.locator("canvas").first).to_be_visible()
    expect(throughput.locator(".u-legend")).to_contain_text(label)
    wait_for(lambda: charted_answers(page, label), 1, "the chart shows the first answer")
    world.gate.release(2)
    wait_for(lambda: charted_answers(page, label), 3, "the chart shows three answers")
    expect(line).to_contain_text("3 / 7")
    latency = page.locator('#timeline figure[data-chart="latency"] .u-legend')
    expect(latency).to_contain_text(f"{label} p50")
    expect(latency).to_contain_text(f"{label} p99")
    # Until the service passes or fails its row is provisional, with images scored of all.
    ranked = team_row(page, "ranking", alpha)
    expect(ranked.locator('td[data-col="status"]')).to_contain_text("provisional")
    expect(ranked.locator('td[data-col="images"]')).to_have_text("3 / 7")

    # Cancel asks first: keeping the run changes nothing.
    page.get_by_role("button", name="Cancel run").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Cancel run #{run_id}?")
    dialog.get_by_role("button", name="Keep").click()
    expect(dialog).to_be_hidden()
    expect(state).to_have_text("running")
    page.get_by_role("button", name="Cancel run").click()
    page.locator("#confirm-ok").click()
    expect(state).to_have_text("cancelled")
    assert world.client.get(f"/api/v1/runs/{run_id}").status_code == 401
    body = world.client.get(f"/api/v1/runs/{run_id}", headers=admin_headers()).json()
    assert body["state"] == "cancelled"

    page.get_by_role("button", name="Resume run").click()
    expect(state).to_have_text("running")
    world.gate.open()
    expect(state).to_have_text("completed")
    expect(line).to_contain_text("7 / 7")
    expect(line.locator(".status")).to_have_text("passed")
    wait_for(lambda: charted_answers(page, label), 7, "the chart shows every answer")
    expect(ranked.locator('td[data-col="images"]')).to_have_text("7 / 7")
    expect(ranked.locator('td[data-col="status"]')).not_to_contain_text("provisional")
    expect(ranked.locator('td[data-col="top1"]')).to_have_text("57.1%")

    # A narrower window: the charts narrow with it.
    canvas = throughput.locator("canvas").first
    wide = canvas.bounding_box()["width"]  # type: ignore[index]
    page.set_viewport_size({"width": 900, "height": 900})
    wait_for(lambda: canvas.bounding_box()["width"] < wide - 200, True, "the chart narrows")  # type: ignore[index]


def test_start_form_sends_its_schedule_in_utc(browser: "Browser", world: World) -> None:
    from playwright.sync_api import expect

    # The person's clock is 5:30 ahead of UTC: the page converts what they type.
    context = browser.new_context(timezone_id="Asia/Kolkata")
    try:
        page = context.new_page()
        sign_in(page, world.url, ADMIN_TOKEN)
        form = page.locator("#start-run")
        form.locator("select[name=dataset]").select_option(label="pets (7 images)")
        form.locator(f'input[value="{world.beta.service_guid}"]').check()
        form.locator("input[name=start_at]").fill("2030-01-02T03:04:05")
        form.locator("input[name=deadline]").fill("2030-01-02T04:00:00")
        with page.expect_response(lambda r: is_start(r.request)) as answered:
            form.get_by_role("button", name="Start run").click()
        response = answered.value
        sent = response.request.post_data_json
        assert sent["start_at"] == "2030-01-01T21:34:05.000Z"
        assert sent["deadline"] == "2030-01-01T22:30:00.000Z"
        # Whether this hub takes a schedule yet or not, the page tells what happened.
        if response.status == 201:
            run_id = response.json()["id"]
            expect(page).to_have_url(re.compile(rf"#/runs/{run_id}$"))
            world.client.post(f"/api/v1/runs/{run_id}/cancel", headers=admin_headers())
        else:
            error = response.json()
            expect(page.locator("#error")).to_have_text(
                f"Error {response.status}: {error['detail']} ({error['code']})"
            )
    finally:
        context.close()


def test_downloads_are_the_apis_exports(page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    sign_in(page, world.url, ADMIN_TOKEN, f"#/runs/{world.run_id}")
    expect(page.locator("#view h1 .badge").first).to_have_text("completed")
    downloads = page.locator("#downloads")
    base = f"/api/v1/runs/{world.run_id}"

    def api(path: str) -> bytes:
        r = world.client.get(base + path, headers=admin_headers())
        assert r.status_code == 200, r.text
        return r.content

    button = downloads.get_by_role("button", name="Leaderboard CSV")
    assert downloaded(page, button) == api("/leaderboard?format=csv")
    button = downloads.get_by_role("button", name="All results CSV")
    assert downloaded(page, button) == api("/results?format=csv")
    button = downloads.get_by_role("button", name="All results JSONL")
    assert downloaded(page, button) == api("/results?format=jsonl")
    beta = downloads.locator(f'[data-service="{world.beta.service_guid}"]')
    expect(beta).to_contain_text("Beta Dogs / Beta Dogs-svc")
    beta_results = f"/results?service={world.beta.service_guid}&format=csv"
    assert downloaded(page, beta.get_by_role("button", name="Results CSV")) == api(beta_results)
    beta_results = beta_results.replace("csv", "jsonl")
    assert downloaded(page, beta.get_by_role("button", name="Results JSONL")) == api(beta_results)

    caption = page.locator("#timeline h2 .sub")
    expect(caption).to_have_text(re.compile(r"buckets of \d+ s"))
    width = re.search(r"\d+", caption.inner_text()).group(0)  # type: ignore[union-attr]
    timeline = downloaded(
        page, page.locator("#timeline").get_by_role("button", name="Timeline CSV")
    )
    assert timeline == api(f"/timeline?format=csv&bucket_s={width}")
    assert timeline.decode().splitlines()[0].startswith("service_guid,provider_name,service_name")


def test_admin_publishes_and_unpublishes_an_evaluation(page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    run_id = start_run(
        world.client, dataset=world.pets, phase="evaluation", services=[world.beta.service_guid]
    )
    wait_until_completed(world.client, run_id)
    board = f"/api/v1/runs/{run_id}/leaderboard"
    as_beta = bearer(world.beta.api_key)
    assert world.client.get(board, headers=as_beta).status_code == 403

    sign_in(page, world.url, ADMIN_TOKEN, f"#/runs/{run_id}")
    page.get_by_role("button", name="Publish leaderboard").click()
    expect(page.locator("#view h1 .badge.published")).to_have_text("published")
    r = world.client.get(board, headers=as_beta)
    assert r.status_code == 200, r.text
    assert [row["provider_name"] for row in r.json()] == ["Beta Dogs"]

    page.get_by_role("button", name="Unpublish leaderboard").click()
    expect(page.locator("dialog#confirm")).to_contain_text("Teams no longer see it")
    page.locator("#confirm-ok").click()
    expect(page.get_by_role("button", name="Publish leaderboard")).to_be_visible()
    expect(page.locator("#view h1 .badge.published")).to_have_count(0)
    assert world.client.get(board, headers=as_beta).status_code == 403


def test_admin_opens_a_dataset_to_teams_and_deletes_one_no_run_uses(
    page: "Page", world: World, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    sign_in(page, world.url, ADMIN_TOKEN, "#/datasets")
    row = page.locator(f'#datasets tr[data-dataset="{world.pets}"]')
    expect(row).to_contain_text("closed")
    row.get_by_role("button", name="Open to teams").click()
    expect(row).to_contain_text("open")
    dataset = world.client.get(f"/api/v1/datasets/{world.pets}", headers=admin_headers()).json()
    assert dataset["open_to_teams"] is True
    row.get_by_role("button", name="Close to teams").click()
    expect(row).to_contain_text("closed")
    dataset = world.client.get(f"/api/v1/datasets/{world.pets}", headers=admin_headers()).json()
    assert dataset["open_to_teams"] is False

    # Runs use this dataset: the hub refuses to delete it, and the page says it in its words.
    row.get_by_role("button", name="Delete").click()
    expect(page.locator("dialog#confirm")).to_contain_text("Delete dataset pets?")
    page.locator("#confirm-ok").click()
    refusal = world.client.delete(f"/api/v1/datasets/{world.pets}", headers=admin_headers())
    assert refusal.status_code == 409
    expect(page.locator("#error")).to_have_text(
        f"Error 409: {refusal.json()['detail']} ({refusal.json()['code']})"
    )
    expect(row).to_be_visible()

    # A dataset no run uses goes, once confirmed.
    spare = import_clickture(world.client, tmp_path, "spare", ["cat"])
    page.reload()
    row = page.locator(f'#datasets tr[data-dataset="{spare}"]')
    row.get_by_role("button", name="Delete").click()
    page.locator("dialog#confirm").get_by_role("button", name="Keep").click()
    expect(row).to_be_visible()
    row.get_by_role("button", name="Delete").click()
    page.locator("#confirm-ok").click()
    expect(row).to_have_count(0)
    expect(page.locator("#error")).to_be_hidden()
    gone = world.client.get(f"/api/v1/datasets/{spare}", headers=admin_headers())
    assert gone.status_code == 404


def test_team_sees_and_starts_only_its_own(page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    gamma = world.gamma
    r = world.client.patch(
        f"/api/v1/datasets/{world.small}", json={"open_to_teams": True}, headers=admin_headers()
    )
    assert r.status_code == 200, r.text
    sign_in(page, world.url, gamma.api_key)
    expect(page.locator("#who")).to_have_text("team Gamma Owls")
    expect(page.locator("#view h1")).to_have_text("Your runs")
    # Its runs only: not the run of Beta alone (nor Alpha's).
    expect(page.locator(f'#runs tr[data-run="{world.run_id}"]')).to_be_visible()
    expect(page.locator(f'#runs tr[data-run="{world.beta_only_run}"]')).to_have_count(0)

    form = page.locator("#start-run")
    expect(form.locator("select[name=dataset] option")).to_have_text(["pets-small (3 images)"])
    expect(form.locator("select[name=phase], input[name=concurrency]")).to_have_count(0)
    expect(form.locator("input[type=checkbox]")).to_have_count(1)
    expect(form).to_contain_text("Gamma Owls / Gamma Owls-svc")
    form.get_by_role("button", name="Start dry run").click()
    expect(page).to_have_url(re.compile(r"#/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    run = world.client.get(f"/api/v1/runs/{run_id}", headers=admin_headers()).json()
    assert run["started_by"] == gamma.provider_guid and run["dataset"] == "pets-small"
    expect(page.locator("#view h1 .badge").first).to_have_text("completed")
    expect(team_row(page, "progress", gamma)).to_contain_text("3 / 3")

    # Its own results, no organizer control, no whole-run export (the truth is in it).
    expect(page.locator("#controls button")).to_have_count(0)
    downloads = page.locator("#downloads")
    expect(downloads.get_by_role("button", name=re.compile("All results"))).to_have_count(0)
    own = downloads.locator(f'[data-service="{gamma.service_guid}"]')
    csv = downloaded(page, own.get_by_role("button", name="Results CSV"))
    r = world.client.get(
        f"/api/v1/runs/{run_id}/results?service={gamma.service_guid}&format=csv",
        headers=bearer(gamma.api_key),
    )
    assert r.status_code == 200, r.text
    assert csv == r.content
    assert "labels" not in csv.decode().splitlines()[0].split(",")
    classes = page.locator("#classes tbody tr")
    expect(classes).to_have_count(2)  # cat and dog
    expect(page.locator('#classes tr[data-label="cat"]')).to_contain_text("100.0%")

    # The shared dry run: only its own row anywhere on the page.
    page.goto(f"{world.url}/#/runs/{world.run_id}")
    expect(page.locator("#progress tr[data-service]")).to_have_count(1)
    expect(page.locator("#ranking tbody tr")).to_have_count(1)
    expect(page.locator("#timeline .u-legend")).to_have_count(3)
    expect(page.locator("#timeline")).not_to_contain_text("Beta Dogs")
    expect(page.locator("#view")).not_to_contain_text("Beta Dogs")

    page.click("nav >> text=Datasets")
    expect(page.locator("#datasets tbody tr")).to_have_count(1)
    expect(page.locator("#datasets tbody tr")).to_contain_text("pets-small")

    page.click("nav >> text=Services")
    expect(page.locator("#services tr[data-service]")).to_have_count(1)
    line = team_row(page, "services", gamma)
    line.get_by_role("button", name="Check").click()
    report = line.locator("xpath=following-sibling::tr[1]")
    expect(report.locator(".verdict")).to_contain_text("every instance is reachable")


def test_team_sees_why_an_unpublished_evaluation_is_hidden(page: "Page", world: World) -> None:
    from playwright.sync_api import expect

    run_id = start_run(
        world.client, dataset=world.pets, phase="evaluation", services=[world.gamma.service_guid]
    )
    wait_until_completed(world.client, run_id)
    sign_in(page, world.url, world.gamma.api_key, f"#/runs/{run_id}")
    expect(page.locator("#view h1 .badge").first).to_have_text("completed")
    expect(page.locator("#leaderboard .note")).to_contain_text("not published yet")
    expect(page.locator("#timeline .note")).to_contain_text("not published yet")
    expect(page.locator("#downloads")).to_contain_text("Results of an evaluation stay")
    expect(page.locator("#downloads button")).to_have_count(0)
    # No Failures button that could only be refused: a note says why (issue 20).
    expect(page.locator("#insight-hidden")).to_contain_text("stay with the organizer")
    expect(page.locator("#insight-service")).to_be_hidden()
    expect(page.locator("#classes tbody tr")).to_have_count(0)

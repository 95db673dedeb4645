"""Issue 19 on the dashboard, in a real browser against a live hub: a team on an offline
phase's card downloads the phase's images (with its token: fetch + blob), uploads a bad
prediction file and sees the refusal naming its line (nothing counted), then a good one
and follows the 202 to its scores, with the file's progress shown while it scores."""

import io
import zipfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.builders import hub_settings, register_team
from tests.challenges.builders import create_challenge, phase_body
from tests.challenges.offline_builders import seed
from tests.servers import live_server
from tests.web.test_challenge_page import tab

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

PETS = {"img-a": ["cat"], "img-b": ["cat"], "img-c": ["dog"], "img-d": ["bird"]}


def choose_file(page: "Page", name: str, data: bytes, format: str) -> None:
    card = page.locator('section.phase[data-phase="final"]')
    card.get_by_label("Prediction file").set_input_files(
        {"name": name, "mimeType": "text/plain", "buffer": data}
    )
    card.get_by_label("Format").select_option(format)
    card.locator("button.upload").click()


def test_a_team_uploads_files_and_downloads_images_from_the_challenge_page(
    browser: "Browser", tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    from gateway.app import create_app

    database = f"sqlite:///{tmp_path / 'hub.db'}"
    # Answers 202 at once and holds a file six seconds before it scores it, longer
    # than one poll of the page (3 s).
    settings = hub_settings(
        database, tmp_path / "data", submission_wait_s=0.0, submission_scoring_delay_s=6.0
    )
    with ExitStack() as stack:
        url = stack.enter_context(live_server(create_app(settings))).url
        c = stack.enter_context(httpx.Client(base_url=url, timeout=60))
        seed(database, tmp_path / "data", PETS)
        alpha = register_team(c, [], name="Alpha")
        create_challenge(
            c,
            "pets-cup",
            phase_body(kind="offline", metric="top1", submission_limit={"total": 2}),
        )
        page: Page = stack.enter_context(tab(browser))
        page.goto(f"{url}/")
        page.fill("#token", alpha.api_key)
        page.click("#sign-in button[type=submit]")
        expect(page.locator("#who")).not_to_be_empty()
        page.goto(f"{url}/#/challenges/pets-cup")
        card = page.locator('section.phase[data-phase="final"]')
        expect(card.locator(".yours")).to_contain_text("0 made, 2 left")

        with page.expect_download() as downloaded:
            card.locator("button.download-images").click()
        assert downloaded.value.suggested_filename == "pets-cup-final-images.zip"
        archive = zipfile.ZipFile(io.BytesIO(Path(downloaded.value.path()).read_bytes()))
        assert "images.csv" in archive.namelist()
        assert archive.read("labels.txt").decode() == "bird\ncat\ndog\n"

        status = card.locator(".upload-status")
        choose_file(page, "bad.txt", b"cat\nzebra\n", "ilsvrc")
        expect(status).to_contain_text("Refused, it does not count")
        expect(status).to_contain_text("line 2")
        expect(status).to_contain_text("zebra")
        expect(card.locator(".yours")).to_contain_text("0 made, 2 left")

        choose_file(page, "predictions.txt", b"cat\ncat\ndog\ncat\n", "ilsvrc")  # 3 of 4
        expect(status).to_contain_text("accepted; scoring")
        expect(status).to_contain_text("images scored")  # its progress, while it scores
        expect(card.locator("#history-final tbody tr[data-submission] .progress")).to_contain_text(
            "0 / 4"
        )
        expect(status).to_contain_text("scored on all images: Top-1 75.0%", timeout=30_000)
        expect(card.locator(".yours")).to_contain_text("1 made, 1 left")
        row = card.locator("#history-final tbody tr[data-submission]")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("75.0%")
        expect(page.locator("#error")).to_be_hidden()

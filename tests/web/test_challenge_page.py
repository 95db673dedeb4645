"""Issue 18's "done when", in a real browser against a live hub and live sample
recognizers: the organizer applies the README's ISC challenge, two teams submit from
the challenge page (one past its limit, refused, the refusal shown), the leaderboard
shows the public part's scores only, the phase closes, the organizer publishes, and an
anonymous visitor reads the final ranking on the public page."""

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from gateway.cli.main import app as organizer_cli
from tests.builders import ADMIN_TOKEN, Team, admin_headers, hub_settings, register_team
from tests.challenges.builders import iso
from tests.challenges.test_readme_challenges import challenge_files
from tests.servers import live_server
from tests.web.builders import import_clickture, recognizer, sign_in, wait_until_completed

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

LABELS = ["cat", "dog", "cat", "cat", "dog", "bird", "cat", "dog", "dog", "cat", "bird", "cat"]
API = "/api/v1/challenges/isc-2021/phases/final"


def isc_file(tmp: Path) -> Path:
    """The README's ISC file as written, but for its final phase's window (now, so that
    it is open) and its kind: live runs (prediction files are issue 19's)."""
    (text,) = [t for t in challenge_files() if yaml.safe_load(t)["slug"] == "isc-2021"]
    challenge: dict[str, Any] = yaml.safe_load(text)
    final = challenge["phases"][-1]
    assert final["name"] == "final" and final["submission_limit"] == {"total": 3}
    assert final["counts"] == "best" and final["public_fraction"] == 0.5
    now = datetime.now(UTC)
    final.update(
        kind="live", opens_at=iso(now - timedelta(hours=1)), closes_at=iso(now + timedelta(days=1))
    )
    path = tmp / "isc-2021.yaml"
    path.write_text(yaml.safe_dump(challenge), encoding="utf-8")
    return path


@contextmanager
def tab(browser: "Browser") -> Iterator["Page"]:
    """Another person's tab (own context, own sessionStorage); script errors fail."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    try:
        yield page
    finally:
        context.close()
    assert not problems, problems


def open_challenge(page: "Page", url: str, token: str) -> None:
    """Sign in (a tab without a token shows the public page), then open the challenge."""
    from playwright.sync_api import expect

    sign_in(page, url, token)
    expect(page.locator("#who")).not_to_be_empty()
    page.goto(f"{url}/#/challenges/isc-2021")


def submit_from_page(page: "Page") -> None:
    page.locator('section.phase[data-phase="final"] button.submit').click()


def history_rows(page: "Page") -> int:
    return page.locator("#history-final tbody tr[data-submission]").count()


def score_cells(page: "Page") -> dict[str, str]:
    rows = page.locator("#board-final tbody tr[data-team]")
    return {
        row.get_attribute("data-team") or "": row.locator("td.primary").inner_text()
        for row in rows.all()
    }


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def test_an_isc_challenge_from_submission_to_the_public_final_ranking(
    page: "Page", browser: "Browser", tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    from gateway.app import create_app

    settings = hub_settings(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path / "data")
    with ExitStack() as stack:
        url = stack.enter_context(live_server(create_app(settings))).url
        c = stack.enter_context(httpx.Client(base_url=url, timeout=60))
        alpha: Team = register_team(
            c, [recognizer(stack, answer="cat:0.9;dog:0.1")], name="Alpha Cats"
        )
        beta: Team = register_team(c, [recognizer(stack, answer="dog:0.9;cat:0.1")], name="Beta")
        for name in ("isc-phase1", "isc-phase2"):
            import_clickture(c, tmp_path, name, LABELS)
        applied = CliRunner().invoke(
            organizer_cli,
            ["challenge", "apply", str(isc_file(tmp_path)), "--hub", url, "--token", ADMIN_TOKEN],
        )
        assert applied.exit_code == 0 and "created challenge" in applied.output, applied.output

        # Alpha submits once from its challenge page.
        with tab(browser) as alpha_page:
            open_challenge(alpha_page, url, alpha.api_key)
            final = alpha_page.locator('section.phase[data-phase="final"]')
            expect(final.locator(".yours")).to_contain_text("0 made, 3 left")
            submit_from_page(alpha_page)
            expect(final.locator(".yours")).to_contain_text("1 made, 2 left")

        # Beta submits its three, and a fourth is refused: the hub's words are shown.
        with tab(browser) as beta_page:
            open_challenge(beta_page, url, beta.api_key)
            final = beta_page.locator('section.phase[data-phase="final"]')
            for made in (1, 2, 3):
                submit_from_page(beta_page)
                expect(final.locator(".yours")).to_contain_text(f"{made} made, {3 - made} left")
            submit_from_page(beta_page)
            error = beta_page.locator("#error")
            expect(error).to_be_visible()
            expect(error).to_contain_text("Error 429")
            expect(error).to_contain_text("allows no more")
            expect(error).to_contain_text("quota_exceeded")
            assert history_rows(beta_page) == 3

            runs = {
                s["run_id"] for s in c.get(f"{API}/submissions", headers=admin_headers()).json()
            }
            assert len(runs) == 4
            for run_id in runs:
                wait_until_completed(c, run_id)

            # The team's leaderboard: the public part's scores, said so.
            beta_page.reload()
            expect(final.locator(".board-note.live")).to_contain_text(
                "Live scores on the public part"
            )
            public = c.get(f"{API}/leaderboard", headers=admin_headers(), params={"part": "public"})
            private = c.get(
                f"{API}/leaderboard", headers=admin_headers(), params={"part": "private"}
            )
            metric = "micro_ap"
            shown_public = {
                r["provider_name"]: pct((r["scores"] or {}).get(metric))
                for r in public.json()["rows"]
            }
            shown_private = {
                r["provider_name"]: pct((r["scores"] or {}).get(metric))
                for r in private.json()["rows"]
            }
            assert shown_public != shown_private  # the parts differ: the page tells which
            expect(beta_page.locator("#board-final tbody tr[data-team]")).to_have_count(2)
            assert score_cells(beta_page) == shown_public
            # Its run's page counts the public part only, and says so.
            beta_page.locator("#history-final tbody tr[data-submission] a").first.click()
            expect(beta_page.locator("#part-note")).to_contain_text("public part")

        # Before publication an anonymous visitor sees the challenge, not its scores.
        with tab(browser) as visitor:
            visitor.goto(f"{url}/#/challenges/isc-2021")
            expect(visitor.locator("#challenge h1")).to_have_text(
                "Image Similarity Challenge 2021 (matching track)"
            )
            expect(
                visitor.locator('section.phase[data-phase="final"] .board-note')
            ).to_contain_text("once the organizer publishes")

        # The organizer runs every enrolled service once more (never refused), closes the
        # phase at once (those runs stop as at a deadline), then publishes its ranking.
        open_challenge(page, url, ADMIN_TOKEN)
        final = page.locator('section.phase[data-phase="final"]')
        expect(final.locator("h2 .badge")).to_have_text("open")
        expect(final.locator("#history-final tbody tr[data-submission]")).to_have_count(4)
        final.get_by_role("button", name="Run every enrolled service").click()
        expect(final.locator("#history-final tbody tr[data-submission]")).to_have_count(6)
        final.get_by_role("button", name="Close now").click()
        page.locator("#confirm-ok").click()
        expect(final.locator("h2 .badge")).to_have_text("closed")
        final.get_by_role("button", name="Publish final ranking").click()
        page.locator("#confirm-ok").click()
        expect(final.locator("h2 .badge")).to_have_text("published")

        # An anonymous visitor reads the final ranking: names and scores, on the private part.
        with tab(browser) as visitor:
            visitor.goto(f"{url}/#/challenges/isc-2021")
            final = visitor.locator('section.phase[data-phase="final"]')
            expect(final.locator(".board-note.final")).to_contain_text(
                "Final ranking on the private part"
            )
            expect(final.locator("#board-final tbody tr[data-team]")).to_have_count(2)
            ranking = c.get(f"{API}/leaderboard").json()
            assert ranking["final"] is True
            assert score_cells(visitor) == {
                r["provider_name"]: pct(r["scores"][metric]) for r in ranking["rows"]
            }
            assert score_cells(visitor) == shown_private
            ranks = final.locator("#board-final tbody tr[data-team] td:first-child")
            assert ranks.all_inner_texts() == ["1", "2"]
            # Names and scores only.
            assert final.locator("#board-final thead th").all_inner_texts() == [
                "#",
                "Team",
                "Service",
                "µAP",
                "Images",
            ]
            text = visitor.content()
            assert alpha.service_guid not in text and beta.provider_guid not in text
            assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", visitor.locator("#view").inner_text())

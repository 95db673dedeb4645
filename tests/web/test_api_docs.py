"""/docs and /redoc work with no internet: their scripts come from the hub."""

import re
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.builders import hub_settings
from tests.servers import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route


LAYOUT_TIMEOUT_MS = 60_000
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo"


def client(tmp_path: Path) -> httpx.AsyncClient:
    from gateway.app import create_app

    # No lifespan: these routes touch neither the database nor the worker.
    app = create_app(hub_settings(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub")


async def test_the_pages_load_only_the_hubs_own_assets(tmp_path: Path) -> None:
    async with client(tmp_path) as c:
        for page in ("/docs", "/redoc"):
            html = (await c.get(page)).text
            urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
            assert urls, html
            assert all(u.startswith(("/docs-assets/", "/openapi.json")) for u in urls), urls
            for url in urls:
                r = await c.get(url)
                assert r.status_code == 200, url
                assert r.headers["x-content-type-options"] == "nosniff"


async def test_assets_are_served_by_name_only(tmp_path: Path) -> None:
    async with client(tmp_path) as c:
        js = await c.get("/docs-assets/swagger-ui-bundle.js")
        assert js.headers["content-type"].startswith("text/javascript")
        for name in ("core.py", "..%2F__init__.py", "swagger-ui-bundle.js.map"):
            r = await c.get(f"/docs-assets/{name}")
            assert (r.status_code, r.json()["code"]) == (404, "not_found")


def _offline(page: "Page", blocked: list[str]) -> None:
    """Let the page reach 127.0.0.1 only; note every other request it makes."""

    def route(route: "Route") -> None:
        if re.match(r"^https?://127\.0\.0\.1[:/]", route.request.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", route)


@pytest.mark.browser
def test_swagger_ui_lists_the_operations_offline(sqlite_hub: LiveServer, page: "Page") -> None:
    from playwright.sync_api import expect

    operations = sum(
        len(methods)
        for methods in httpx.get(f"{sqlite_hub.url}/openapi.json").json()["paths"].values()
    )
    blocked: list[str] = []
    _offline(page, blocked)
    page.goto(f"{sqlite_hub.url}/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.locator(".opblock")).to_have_count(operations)
    expect(page.get_by_text("/api/v1/runs/{run_id}/leaderboard")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Authorize"))).to_be_visible()
    assert blocked == []


@pytest.mark.browser
def test_redoc_shows_the_operations_offline(sqlite_hub: LiveServer, page: "Page") -> None:
    from playwright.sync_api import expect

    blocked: list[str] = []
    _offline(page, blocked)
    page.goto(f"{sqlite_hub.url}/redoc")
    # ReDoc lays out the whole schema before it shows anything: slow on a busy machine.
    heading = page.get_by_role("heading", name=re.compile("RecogHub"))
    expect(heading).to_be_visible(timeout=LAYOUT_TIMEOUT_MS)
    expect(page.get_by_text("Get Leaderboard").first).to_be_attached()
    # Only ReDoc's "API docs by Redocly" footer logo lives elsewhere; it is not needed.
    assert all(url.startswith(REDOCLY_LOGO) for url in blocked), blocked

"""The dashboard's own routes: the page, its modules and the vendored chart library,
no token needed."""

import re
from pathlib import Path

import httpx

from tests.builders import hub_settings


def client(tmp_path: Path) -> httpx.AsyncClient:
    from gateway.app import create_app

    # No lifespan: these routes touch neither the database nor the worker.
    app = create_app(hub_settings(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub")


async def test_page_is_served_with_a_strict_content_security_policy(tmp_path: Path) -> None:
    async with client(tmp_path) as c:
        r = await c.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/dashboard.js">' in r.text
    policy = r.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_static_files_are_served_by_name_only(tmp_path: Path) -> None:
    async with client(tmp_path) as c:
        js = await c.get("/static/dashboard.js")
        assert js.status_code == 200
        assert js.headers["content-type"].startswith("text/javascript")
        assert "sessionStorage" in js.text
        css = await c.get("/static/dashboard.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        for name in (
            "routes.py",
            "..%2Froutes.py",
            "index.html",
            "vendor/../routes.py",
            "vendor/uPlot.esm.js",
        ):
            r = await c.get(f"/static/{name}")
            assert r.status_code == 404
            assert r.json()["code"] == "not_found"


async def test_dashboard_routes_stay_out_of_the_api_schema(tmp_path: Path) -> None:
    async with client(tmp_path) as c:
        paths = (await c.get("/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert not any(p.startswith("/static") for p in paths)


async def test_modules_and_the_vendored_chart_library_are_served(tmp_path: Path) -> None:
    async with client(tmp_path) as c:
        page = (await c.get("/")).text
        assert '<script src="/static/vendor/uPlot.iife.min.js" defer>' in page
        assert '<link rel="stylesheet" href="/static/vendor/uPlot.min.css">' in page
        library = await c.get("/static/vendor/uPlot.iife.min.js")
        assert library.status_code == 200
        assert library.headers["content-type"].startswith("text/javascript")
        assert library.text.startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
        css = await c.get("/static/vendor/uPlot.min.css")
        assert css.headers["content-type"].startswith("text/css")
        license_text = (await c.get("/static/vendor/uPlot.LICENSE")).text
        assert "MIT License" in license_text and "Leon Sorokin" in license_text
        entry = (await c.get("/static/dashboard.js")).text
        # Every module the entry imports (and they import) is served.
        pending = [entry]
        seen: set[str] = set()
        while pending:
            for name in re.findall(r'from "\./([a-z]+\.js)"', pending.pop()):
                if name not in seen:
                    seen.add(name)
                    r = await c.get(f"/static/{name}")
                    assert r.status_code == 200, name
                    assert r.headers["content-type"].startswith("text/javascript")
                    pending.append(r.text)
        assert {"api.js", "run.js", "timeline.js", "start.js"} <= seen

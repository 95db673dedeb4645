"""The dashboard (`GET /` and `/static/...`): one HTML page, one stylesheet, a few ES
modules and the vendored charting library (uPlot, MIT, under `static/vendor/`).

The pages themselves need no token: they hold no data. The script asks the person for
the admin token or a team's API key, keeps it in the tab's sessionStorage and reads
everything from the JSON API (`/api/v1`), which enforces who sees what. Nothing is
fetched from elsewhere, and the Content-Security-Policy says so to the browser.
"""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from gateway.errors import NotFound

router = APIRouter(tags=["dashboard"])

WEB_DIR = Path(__file__).parent
PAGE = WEB_DIR / "templates" / "index.html"
STATIC_DIR = WEB_DIR / "static"
CSS = "text/css; charset=utf-8"
JS = "text/javascript; charset=utf-8"
# The only files served under /static: a fixed list, so no path ever reaches the disk.
STATIC_FILES: dict[str, str] = {
    "dashboard.css": CSS,
    **{
        f"{module}.js": JS
        for module in (
            "dashboard",
            "api",
            "dom",
            "page",
            "dialog",
            "runs",
            "start",
            "run",
            "leaderboard",
            "timeline",
            "insight",
            "resend",
            "services",
            "datasets",
            "challenges",
            "phase",
            "phasefiles",
        )
    },
    "vendor/uPlot.iife.min.js": JS,
    "vendor/uPlot.min.css": CSS,
    "vendor/uPlot.LICENSE": "text/plain; charset=utf-8",
}

# Script, styles and data come from this origin only; inline scripts never run.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# no-cache: the browser revalidates, so a hub upgrade never runs a stale script.
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@router.get("/", include_in_schema=False)
def dashboard() -> FileResponse:
    """The dashboard page; its views (runs, a run, services) are picked by the URL hash."""
    return FileResponse(PAGE, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/static/{name:path}", include_in_schema=False)
def static_file(name: str) -> FileResponse:
    """The dashboard's stylesheet, scripts and vendored library; 404 for any other name."""
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise NotFound(f"no static file {name!r}")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=PAGE_HEADERS)

"""The API's documentation pages, `/docs` (Swagger UI) and `/redoc`, with no internet.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so without internet they are
blank. These are the same pages with their scripts served by the hub, from the copies
the `fastapi-offline` package ships (a fixed list of files, as for the dashboard).
Swagger UI's online spec validator is turned off: it would send the schema elsewhere.
"""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from gateway.errors import NotFound

router = APIRouter(include_in_schema=False)

ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
# The only files served under ASSETS_URL: no request path ever reaches the disk.
ASSETS: dict[str, str] = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
TITLE = "RecogHub API"


def _root(request: Request) -> str:
    """The path the hub is mounted at behind a proxy (uvicorn --root-path), or ''."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title=TITLE,
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=f"{root}/openapi.json",
        title=TITLE,
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )


@router.get(f"{ASSETS_URL}/{{name}}")
def asset(name: str) -> FileResponse:
    """A script, stylesheet or icon of the documentation pages; 404 for any other name."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no documentation asset {name!r}")
    # The files change only with the package: a day's caching spares the 2.6 MB.
    headers = {"Cache-Control": "public, max-age=86400"}
    return FileResponse(ASSETS_DIR / name, media_type=media_type, headers=headers)

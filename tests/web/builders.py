"""Builders for the dashboard's browser tests: live recognizers (the sample one, and one
that answers a request only when the test lets it), datasets, runs, and signing in."""

import asyncio
import base64
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.builders import admin_headers, jpeg_bytes
from tests.servers import live_server

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

    from tests.builders import Team


def recognizer(stack: ExitStack, **config: Any) -> str:
    """The sample recognizer (dummy backend) served for the duration of `stack`."""
    from sample_recognizer.app import create_recognizer_app
    from sample_recognizer.config import RecognizerConfig

    app = create_recognizer_app(RecognizerConfig(backend="dummy", **config))
    return stack.enter_context(live_server(app)).url


class StepGate:
    """Lets a gated recognizer answer `n` more requests (`release`), or all (`open`)."""

    def __init__(self) -> None:
        self._permits = threading.Semaphore(0)
        self._open = threading.Event()

    def release(self, n: int = 1) -> None:
        self._permits.release(n)

    def open(self) -> None:
        self._open.set()

    def take(self) -> bool:
        return self._open.is_set() or self._permits.acquire(blocking=False)


def gated_recognizer(stack: ExitStack, answer: str, gate: StepGate) -> str:
    """A recognizer that holds each request until `gate` lets one through, then answers
    `answer`: a run stays going for as long as the test needs."""

    async def ping(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def recognize(request: Request) -> Response:
        await request.body()
        while not gate.take():
            # A request the hub gave up on (its timeout) must not use up a permit.
            if await request.is_disconnected():
                return PlainTextResponse("gave up", status_code=499)
            await asyncio.sleep(0.01)
        return PlainTextResponse(answer)

    app = Starlette(routes=[Route("/ping", ping), Route("/recognize", recognize, methods=["POST"])])
    return stack.enter_context(live_server(app)).url


def import_clickture(client: httpx.Client, tmp: Path, name: str, labels: list[str]) -> int:
    """A Clickture dataset (one image per label) imported through the API; its id."""
    tsv = tmp / f"{name}.tsv"
    tsv.write_text(
        "".join(
            f"{label}\timg{i}\t{base64.b64encode(jpeg_bytes(color=(i * 30, 90, 140))).decode()}\n"
            for i, label in enumerate(labels)
        )
    )
    r = client.post(
        "/api/v1/datasets",
        json={"name": name, "format": "clickture", "path": str(tsv)},
        headers=admin_headers(),
    )
    assert r.status_code == 201, r.text
    dataset_id: int = r.json()["id"]
    return dataset_id


def start_run(client: httpx.Client, **body: Any) -> int:
    r = client.post("/api/v1/runs", json={"phase": "dryrun", **body}, headers=admin_headers())
    assert r.status_code == 201, r.text
    run_id: int = r.json()["id"]
    return run_id


def wait_until_completed(client: httpx.Client, run_id: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        r = client.get(f"/api/v1/runs/{run_id}", headers=admin_headers())
        assert r.status_code == 200, r.text
        if r.json()["state"] == "completed":
            return
        assert time.monotonic() < deadline, r.json()
        time.sleep(0.05)


def sign_in(page: "Page", url: str, token: str, where: str = "") -> None:
    page.goto(f"{url}/{where}")
    page.fill("#token", token)
    page.click("#sign-in button[type=submit]")


def team_row(page: "Page", table: str, team: "Team") -> "Locator":
    return page.locator(f'#{table} tr[data-service="{team.service_guid}"]')

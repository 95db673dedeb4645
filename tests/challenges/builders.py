"""Builders for the challenge tests: phase bodies, API calls, waiting for a phase."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.builders import admin_headers, bearer

API = "/api/v1/challenges"


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def phase_body(name: str = "final", dataset: str = "pets", **fields: Any) -> dict[str, Any]:
    """An open phase (opened an hour ago, closing in a day) with `fields` on top."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "name": name,
        "dataset": dataset,
        "opens_at": iso(now - timedelta(hours=1)),
        "closes_at": iso(now + timedelta(days=1)),
    }
    body.update(fields)
    return body


def create_challenge(
    c: httpx.Client, slug: str = "pets-cup", *phases: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    body = {"slug": slug, "title": "Pets cup", "phases": list(phases) or [phase_body()]}
    body.update(fields)
    r = c.post(API, json=body, headers=admin_headers())
    assert r.status_code == 201, r.text
    return dict(r.json())


def submit(
    c: httpx.Client,
    key: str | None,
    service_guid: str,
    slug: str = "pets-cup",
    phase: str = "final",
) -> httpx.Response:
    headers = bearer(key) if key else admin_headers()
    return c.post(
        f"{API}/{slug}/phases/{phase}/submissions",
        json={"service_guid": service_guid},
        headers=headers,
    )


def board(
    c: httpx.Client, key: str | None, slug: str = "pets-cup", phase: str = "final", **params: str
) -> httpx.Response:
    headers = {} if key == "" else (bearer(key) if key else admin_headers())
    return c.get(f"{API}/{slug}/phases/{phase}/leaderboard", headers=headers, params=params)

"""An exception no handler knows answers a JSON 500 with a request id, also logged."""

import logging
import re

import httpx
import pytest

from gateway.registry import service as registry
from tests.builders import admin_headers
from tests.servers import LiveServer

# Errors of the API: no test here dispatches a run.
pytestmark = pytest.mark.api_only


def test_an_unhandled_exception_is_a_json_500_whose_request_id_is_in_the_log(
    sqlite_hub: LiveServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database said something private")

    monkeypatch.setattr(registry, "list_providers", broken)
    with caplog.at_level(logging.ERROR, logger="recoghub"):
        r = httpx.get(f"{sqlite_hub.url}/api/v1/providers", headers=admin_headers())

    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["code"] == "internal_error"
    assert re.fullmatch(r"[0-9a-f]{16}", body["request_id"])
    assert r.headers["X-Request-Id"] == body["request_id"]
    assert body["request_id"] in body["detail"]
    assert "private" not in r.text  # the cause is for the operator's log, not the caller
    [record] = [rec for rec in caplog.records if body["request_id"] in rec.getMessage()]
    assert "GET /api/v1/providers" in record.getMessage()
    assert record.exc_info is not None and "something private" in str(record.exc_info[1])


def test_the_hub_keeps_serving_after_an_unhandled_exception(
    sqlite_hub: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with httpx.Client(base_url=sqlite_hub.url, timeout=30) as client:
        with monkeypatch.context() as patch:
            patch.setattr(registry, "list_providers", lambda *a, **k: 1 / 0)
            assert client.get("/api/v1/providers", headers=admin_headers()).status_code == 500
        r = client.get("/api/v1/providers", headers=admin_headers())

    assert r.status_code == 200
    assert r.json() == []

"""The schema at /openapi.json documents the errors, status codes and content types the
hub really answers (schemathesis holds the answers against it: test_schema_fuzz.py)."""

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import admin_headers, hub_settings
from tests.servers import LiveServer

# The schema and how the API answers: no test here dispatches a run.
pytestmark = pytest.mark.api_only

ERROR_SCHEMAS = {"#/components/schemas/ErrorRead", "#/components/schemas/RelayErrorRead"}


@pytest.fixture
async def schema(tmp_path: Path) -> dict[str, Any]:
    from gateway.app import create_app

    # No lifespan: the schema needs neither the database nor the worker.
    app = create_app(hub_settings(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        document: dict[str, Any] = (await client.get("/openapi.json")).json()
    return document


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_error_is_documented_as_the_hubs_json_error(schema: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert set(schema["components"]["schemas"]["ErrorRead"]["required"]) == {"detail", "code"}
    for method, path, operation in operations(schema):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert list(response["content"]) == ["application/json"], (method, path, status)
                assert response["content"]["application/json"]["schema"]["$ref"] in ERROR_SCHEMAS


def test_routes_that_take_a_body_document_the_guards_answers(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema):
        if "requestBody" in operation:
            assert {"401", "413", "422"} <= set(operation["responses"]), (method, path)


def test_non_json_answers_are_documented_with_their_types(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    results = paths["/api/v1/runs/{run_id}/results"]["get"]["responses"]["200"]["content"]
    assert set(results) == {"application/x-ndjson", "text/csv"}
    relay = paths["/api/v1/services/{guid}/recognize"]["post"]
    assert set(relay["requestBody"]["content"]) == {"image/jpeg", "image/png"}
    assert {"413", "415", "429", "502", "504"} <= set(relay["responses"])
    assert "Retry-After" in relay["responses"]["429"]["headers"]


def test_timestamps_and_ids_are_described_as_they_are(schema: dict[str, Any]) -> None:
    created = schema["components"]["schemas"]["RunRead"]["properties"]["created_at"]
    assert created["format"] == "date-time"
    run_id = schema["paths"]["/api/v1/runs/{run_id}"]["get"]["parameters"][0]["schema"]
    assert (run_id["minimum"], run_id["maximum"]) == (1, 2**31 - 1)


def test_the_bearer_token_is_declared_where_it_is_needed(schema: dict[str, Any]) -> None:
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for method, path, operation in operations(schema):
        if path == "/api/v1/ping":
            assert "security" not in operation
        elif path == "/metrics":
            assert {} in operation["security"]
        else:
            assert operation["security"] == [{"bearer": []}], (method, path)


def test_answers_carry_nosniff(sqlite_hub: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_hub.url, timeout=10) as client:
        answers = [
            client.get("/api/v1/ping"),
            client.get("/api/v1/runs"),  # 401
            client.post("/api/v1/runs", content=b"x" * (2 * 1024 * 1024)),  # the guard's 413
            client.get("/api/v1/nothing-here"),
            client.get("/metrics"),
            client.get("/openapi.json"),
            client.get("/docs"),
        ]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer.request.url
    assert [a.status_code for a in answers[:4]] == [200, 401, 413, 404]


def test_a_wrong_method_is_405_with_allow(sqlite_hub: LiveServer) -> None:
    r = httpx.delete(f"{sqlite_hub.url}/api/v1/ping")
    assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")
    assert r.headers["allow"] == "GET"


def test_options_and_a_wrong_method_name_every_method_of_the_path(
    sqlite_hub: LiveServer,
) -> None:
    """OPTIONS is no operation of the API: 405, whose Allow names every method the schema
    documents for the path (it named only the first route's: GET of GET/PATCH/DELETE)."""
    with httpx.Client(base_url=sqlite_hub.url, timeout=10, headers=admin_headers()) as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert len(paths) >= 20
        for path, item in paths.items():
            documented = {method.upper() for method in item}
            url = re.sub(r"\{[^}]*id\}", "1", path).replace("{guid}", str(uuid.uuid4()))
            url = re.sub(r"\{[^}]*\}", str(uuid.uuid4()), url)
            wrong = next(m for m in ("PUT", "PATCH", "DELETE", "POST") if m not in documented)
            for method in ("OPTIONS", wrong):
                r = client.request(method, url)
                assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed"), (
                    method,
                    path,
                )
                allowed = {m.strip() for m in r.headers["allow"].split(",")}
                assert allowed - {"HEAD"} == documented, (method, path, r.headers["allow"])
                assert f"{method} is not allowed" in r.json()["detail"]


def test_the_schema_states_the_input_rules(schema: dict[str, Any]) -> None:
    """Endpoint URLs, tsv columns, names and the caps on max_concurrency (issue 17, 9)."""
    parts = schema["components"]["schemas"]
    endpoint = parts["ServiceCreate"]["properties"]["endpoints"]["items"]
    assert endpoint["maxLength"] == 2048
    pattern = re.compile(endpoint["pattern"])
    assert pattern.search("https://recog.example.org:8443/v1")
    assert pattern.search("http://[2001:db8::1]/")
    for bad in ("ftp://x.org", "http://u:p@x.org", "http://x.org/?q", "http://x.org/#f", "x.org"):
        assert not pattern.search(bad), bad
    assert "65535" in endpoint["description"]

    concurrency = parts["ServiceCreate"]["properties"]["max_concurrency"]
    text = json.dumps(concurrency)
    assert "RECOGHUB_SERVICE_CONCURRENCY_MAX" in text
    assert "RECOGHUB_PROVIDER_CONCURRENCY_MAX" in text

    name = parts["ProviderCreate"]["properties"]["name"]
    assert name["maxLength"] == 200 and not re.search(name["pattern"], "\xa0 \t\u3000")
    assert re.search(name["pattern"], "\xa0team")

    dataset = schema["paths"]["/api/v1/datasets"]["post"]["requestBody"]["content"]
    (tsv_rule,) = dataset["application/json"]["schema"]["allOf"]
    assert tsv_rule["if"]["properties"]["format"] == {"const": "tsv"}
    assert set(tsv_rule["then"]["required"]) == {"key_column", "image_column"}
    published = parts["PublishUpdate"]["properties"]["published"]
    assert published["type"] == "boolean"

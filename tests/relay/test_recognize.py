"""`POST /api/v1/services/{guid}/recognize` through a live hub to live sample recognizers."""

import io
import re
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from PIL import Image

from gateway.protocol.result_string import ResultStringError, parse_result
from tests.builders import admin_headers, bearer, jpeg_bytes, png_bytes, register_team
from tests.relay.conftest import SMALL_IMAGE_LIMIT, SMALL_PIXEL_LIMIT, bomb_png
from tests.servers import LiveServer

# Relayed by the API process: no test here dispatches a run.
pytestmark = pytest.mark.api_only

Recognizers = Callable[..., str]


def recognize_path(guid: str) -> str:
    return f"/api/v1/services/{guid}/recognize"


@pytest.fixture
def api(sqlite_hub: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sqlite_hub.url, timeout=30) as client:
        yield client


def test_recognize_answers_ranked_tags_and_latency(
    hub: LiveServer, recognizers: Recognizers
) -> None:
    url = recognizers(answer="dog:0.25;cat:0.75;", delay_ms=20)
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        team = register_team(client, [url])
        r = client.post(
            recognize_path(team.service_guid), content=png_bytes(), headers=bearer(team.api_key)
        )

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tags"] == [{"tag": "cat", "score": 0.75}, {"tag": "dog", "score": 0.25}]
    assert body["raw"] == "dog:0.25;cat:0.75;"
    assert body["outcome"] == "ok"
    assert body["service_guid"] == team.service_guid
    assert body["instance"] == url
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    assert body["latency_ms"] >= 20
    [attempt] = body["attempts"]
    assert attempt["n"] == 1 and attempt["instance"] == url and attempt["outcome"] == "ok"
    assert attempt["latency_ms"] == body["latency_ms"]


def test_the_organizer_may_relay_a_jpeg(api: httpx.Client, recognizers: Recognizers) -> None:
    team = register_team(api, [recognizers(answer="husky:0.5")])
    r = api.post(recognize_path(team.service_guid), content=jpeg_bytes(), headers=admin_headers())

    assert r.status_code == 200, r.text
    assert r.json()["tags"] == [{"tag": "husky", "score": 0.5}]


def test_signed_requests_pass_a_recognizer_that_verifies_them(
    api: httpx.Client, recognizers: Recognizers, refused_url: Callable[[], str]
) -> None:
    # The secret is issued at registration, so the recognizer starts after it.
    team = register_team(api, [refused_url()])
    url = recognizers(secret=team.signing_secret, answer="cat:1")
    r = api.patch(
        f"/api/v1/services/{team.service_guid}", json={"endpoints": [url]}, headers=admin_headers()
    )
    assert r.status_code == 200, r.text

    r = api.post(
        recognize_path(team.service_guid), content=png_bytes(), headers=bearer(team.api_key)
    )

    assert r.status_code == 200, r.text
    assert r.json()["tags"] == [{"tag": "cat", "score": 1.0}]


def test_a_provider_guid_given_as_service_is_named_as_such(
    hub: LiveServer, recognizers: Recognizers
) -> None:
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        team = register_team(client, [recognizers()])
        r = client.post(
            recognize_path(team.provider_guid), content=png_bytes(), headers=bearer(team.api_key)
        )

    assert r.status_code == 404
    assert r.json() == {
        "detail": f"{team.provider_guid} is a provider GUID, not a service GUID",
        "code": "wrong_guid_kind",
    }


def test_an_unknown_service_is_404(api: httpx.Client) -> None:
    guid = str(uuid.uuid4())
    r = api.post(recognize_path(guid), content=png_bytes(), headers=admin_headers())

    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    assert guid in r.json()["detail"]


def test_recognizer_down_is_502_connect_error(
    api: httpx.Client, refused_url: Callable[[], str]
) -> None:
    down = refused_url()
    team = register_team(api, [down])
    r = api.post(
        recognize_path(team.service_guid), content=png_bytes(), headers=bearer(team.api_key)
    )

    assert r.status_code == 502
    body = r.json()
    assert body["code"] == "connect_error"
    assert f"cannot reach {down}" in body["detail"]
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    assert body["raw"] is None


def test_recognizer_slower_than_the_timeout_is_504(
    tight_hub: LiveServer, recognizers: Recognizers
) -> None:
    with httpx.Client(base_url=tight_hub.url, timeout=30) as client:
        team = register_team(client, [recognizers(delay_ms=800)])
        r = client.post(
            recognize_path(team.service_guid), content=png_bytes(), headers=bearer(team.api_key)
        )

    assert r.status_code == 504
    assert r.json()["code"] == "timeout"
    assert "within 0.3s" in r.json()["detail"]
    assert r.json()["request_id"]


def test_bad_format_is_502_with_the_offending_entry(
    api: httpx.Client, recognizers: Recognizers
) -> None:
    team = register_team(api, [recognizers(bad_rate=1.0)])
    r = api.post(
        recognize_path(team.service_guid), content=png_bytes(), headers=bearer(team.api_key)
    )

    assert r.status_code == 502
    body = r.json()
    assert body["code"] == "bad_format"
    with pytest.raises(ResultStringError) as expected:
        parse_result(body["raw"])
    assert body["detail"] == str(expected.value)
    assert body["detail"].startswith("entry ")


def test_bad_signature_is_502_with_the_recognizers_401(
    api: httpx.Client, recognizers: Recognizers
) -> None:
    team = register_team(api, [recognizers(secret="not-the-services-secret")])
    r = api.post(
        recognize_path(team.service_guid), content=png_bytes(), headers=bearer(team.api_key)
    )

    assert r.status_code == 502
    body = r.json()
    assert body["code"] == "http_error"
    assert body["detail"].startswith(
        "the recognizer rejected the hub's signature: start it with this service's signing "
        "secret (`--secret` / its environment variable); recognizer answered HTTP 401: "
    )
    assert "signature does not match" in body["raw"]


def test_another_providers_key_is_403(api: httpx.Client, recognizers: Recognizers) -> None:
    url = recognizers()
    owner, other = register_team(api, [url]), register_team(api, [url])
    r = api.post(
        recognize_path(owner.service_guid), content=png_bytes(), headers=bearer(other.api_key)
    )

    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"


def test_any_provider_may_relay_when_the_organizer_allows(
    open_hub: LiveServer, recognizers: Recognizers
) -> None:
    url = recognizers(answer="cat:0.9")
    with httpx.Client(base_url=open_hub.url, timeout=30) as client:
        owner, other = register_team(client, [url]), register_team(client, [url])
        r = client.post(
            recognize_path(owner.service_guid), content=png_bytes(), headers=bearer(other.api_key)
        )

    assert r.status_code == 200, r.text
    assert r.json()["tags"] == [{"tag": "cat", "score": 0.9}]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer rk_not_a_key"}], ids=["anonymous", "unknown-key"]
)
def test_without_a_valid_key_is_401(
    api: httpx.Client, recognizers: Recognizers, headers: dict[str, str]
) -> None:
    team = register_team(api, [recognizers()])
    r = api.post(recognize_path(team.service_guid), content=png_bytes(), headers=headers)

    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"


def test_a_disabled_service_is_409(api: httpx.Client, recognizers: Recognizers) -> None:
    team = register_team(api, [recognizers()])
    r = api.patch(
        f"/api/v1/services/{team.service_guid}", json={"enabled": False}, headers=admin_headers()
    )
    assert r.status_code == 200, r.text

    r = api.post(
        recognize_path(team.service_guid), content=png_bytes(), headers=bearer(team.api_key)
    )

    assert r.status_code == 409
    assert r.json()["code"] == "service_disabled"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_upload_is_413(
    tight_hub: LiveServer, recognizers: Recognizers, chunked: bool
) -> None:
    oversized = png_bytes() + b"\0" * SMALL_IMAGE_LIMIT
    content = iter([oversized[i : i + 8192] for i in range(0, len(oversized), 8192)])
    with httpx.Client(base_url=tight_hub.url, timeout=30) as client:
        team = register_team(client, [recognizers()])
        r = client.post(
            recognize_path(team.service_guid),
            content=content if chunked else oversized,
            headers=bearer(team.api_key),
        )

    assert r.status_code == 413
    assert r.json()["code"] == "too_large"
    # In MB, with the setting that sets the limit (not raw byte counts alone).
    detail = r.json()["detail"]
    assert f"over the hub's limit of {SMALL_IMAGE_LIMIT / 1e3:.1f} kB" in detail, detail
    assert f"RECOGHUB_MAX_IMAGE_BYTES={SMALL_IMAGE_LIMIT}" in detail
    if not chunked:
        assert f"image is {len(oversized) / 1e3:.1f} kB, over" in detail


@pytest.mark.parametrize("content", [b"GIF89a not really", b"", b"\x89PNG\r\n\x1a\ntruncated"])
def test_a_body_that_is_not_an_image_is_415(
    api: httpx.Client, recognizers: Recognizers, content: bytes
) -> None:
    team = register_team(api, [recognizers()])
    r = api.post(recognize_path(team.service_guid), content=content, headers=bearer(team.api_key))

    assert r.status_code == 415
    assert r.json()["code"] == "not_an_image"


def test_a_valid_chunked_upload_is_relayed(api: httpx.Client, recognizers: Recognizers) -> None:
    team = register_team(api, [recognizers(answer="cat:0.5")])
    image = png_bytes()
    chunks = iter([image[i : i + 100] for i in range(0, len(image), 100)])
    r = api.post(recognize_path(team.service_guid), content=chunks, headers=bearer(team.api_key))

    assert r.status_code == 200, r.text
    assert r.json()["tags"] == [{"tag": "cat", "score": 0.5}]


@pytest.mark.parametrize("kind", ["GIF", "WEBP"])
def test_a_valid_image_of_another_format_is_415_naming_it(
    api: httpx.Client, recognizers: Recognizers, kind: str
) -> None:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 10)).save(out, format=kind)
    team = register_team(api, [recognizers()])
    r = api.post(
        recognize_path(team.service_guid), content=out.getvalue(), headers=bearer(team.api_key)
    )

    assert r.status_code == 415
    assert r.json()["code"] == "not_an_image"
    assert f"format {kind} is not accepted" in r.json()["detail"]


def test_an_image_over_the_pixel_limit_is_413(
    pixel_capped_hub: LiveServer, recognizers: Recognizers
) -> None:
    with httpx.Client(base_url=pixel_capped_hub.url, timeout=30) as client:
        team = register_team(client, [recognizers()])
        over = client.post(
            recognize_path(team.service_guid), content=png_bytes(), headers=bearer(team.api_key)
        )
        within = client.post(
            recognize_path(team.service_guid),
            content=png_bytes(20, 20),
            headers=bearer(team.api_key),
        )

    assert over.status_code == 413
    assert over.json()["code"] == "too_large"
    assert f"32x24 pixels, over the {SMALL_PIXEL_LIMIT}-pixel limit" in over.json()["detail"]
    assert within.status_code == 200, within.text


def test_a_decompression_bomb_is_413(api: httpx.Client, recognizers: Recognizers) -> None:
    team = register_team(api, [recognizers()])
    bomb = bomb_png()
    assert len(bomb) < 100_000  # small on the wire; 400 million pixels declared
    r = api.post(recognize_path(team.service_guid), content=bomb, headers=bearer(team.api_key))

    assert r.status_code == 413
    assert r.json()["code"] == "too_large"


def test_a_patch_reaches_the_relay_at_once(api: httpx.Client, recognizers: Recognizers) -> None:
    team = register_team(api, [recognizers(answer="old:1")])
    first = api.post(
        recognize_path(team.service_guid), content=png_bytes(), headers=bearer(team.api_key)
    )
    assert first.json()["tags"] == [{"tag": "old", "score": 1.0}]
    new_url = recognizers(answer="new:1")
    r = api.patch(
        f"/api/v1/services/{team.service_guid}",
        json={"endpoints": [new_url]},
        headers=bearer(team.api_key),
    )
    assert r.status_code == 200, r.text

    second = api.post(
        recognize_path(team.service_guid), content=png_bytes(), headers=bearer(team.api_key)
    )

    assert second.json()["tags"] == [{"tag": "new", "score": 1.0}]


def test_relay_answers_are_marked_nosniff(api: httpx.Client, recognizers: Recognizers) -> None:
    team = register_team(api, [recognizers(answer="cat:1")])
    ok = api.post(
        recognize_path(team.service_guid), content=png_bytes(), headers=bearer(team.api_key)
    )
    refused = api.post(recognize_path(team.service_guid), content=b"not an image")

    assert ok.status_code == 200 and refused.status_code == 401
    assert ok.headers["x-content-type-options"] == "nosniff"
    assert refused.headers["x-content-type-options"] == "nosniff"


def test_another_method_on_the_relay_is_405_naming_post(
    api: httpx.Client, recognizers: Recognizers
) -> None:
    team = register_team(api, [recognizers()])
    r = api.get(recognize_path(team.service_guid), headers=bearer(team.api_key))

    assert r.status_code == 405
    assert r.json()["code"] == "method_not_allowed"
    assert r.headers["allow"] == "POST"


def test_an_unexpected_error_in_the_relay_is_a_json_500_with_a_request_id(
    api: httpx.Client, recognizers: Recognizers, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.relay import service as relay

    team = register_team(api, [recognizers()])

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something private")

    monkeypatch.setattr(relay, "relay", broken)
    r = api.post(
        recognize_path(team.service_guid), content=png_bytes(), headers=bearer(team.api_key)
    )

    assert r.status_code == 500
    body = r.json()
    assert body["code"] == "internal_error"
    assert r.headers["x-request-id"] == body["request_id"]
    assert "private" not in r.text

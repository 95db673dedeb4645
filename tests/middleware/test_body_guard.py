"""Request bodies: at most 1 MiB of JSON, and no body read before the caller is known."""

import base64
import io
import json
import os
import socket
from collections.abc import Iterator

import httpx
import psutil
import pytest
from PIL import Image

from tests.builders import admin_headers, bearer, register_team
from tests.servers import LiveServer, live_server

# Bodies refused before any route: no test here dispatches a run.
pytestmark = pytest.mark.api_only

MIB = 1024 * 1024
BIG = 50 * MIB


def chunks(total: int, size: int = MIB) -> Iterator[bytes]:
    """`total` bytes of a JSON-looking body, made a chunk at a time (never held whole)."""
    yield b'{"name": "'
    sent = 10
    while sent < total:
        part = min(size, total - sent)
        yield b"x" * part
        sent += part


def answer_before_the_body(url: str, head: list[str], body_start: bytes) -> tuple[int, dict]:
    """Send a request's head and only the start of its body, then read the answer.

    An answer proves the hub decided without the rest of the body: had it waited for
    it, the read would time out.
    """
    parsed = httpx.URL(url)
    assert parsed.port is not None
    with socket.create_connection((parsed.host, parsed.port), timeout=10) as sock:
        sock.sendall("\r\n".join([*head, "", ""]).encode() + body_start)
        received = b""
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            assert data, "the hub closed the connection without an answer"
            received += data
        header_block, _, body = received.partition(b"\r\n\r\n")
        status_line, *header_lines = header_block.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
        while len(body) < int(headers["content-length"]):
            body += sock.recv(65536)
    return int(status_line.split()[1]), json.loads(body)


def test_a_token_is_checked_before_any_body_is_read(hub: LiveServer) -> None:
    host = httpx.URL(hub.url).netloc.decode()
    for auth in ([], ["Authorization: Bearer rk_not_a_key"]):
        for framing in (["Content-Length: 5000"], ["Transfer-Encoding: chunked"]):
            head = [
                "POST /api/v1/providers HTTP/1.1",
                f"Host: {host}",
                "Content-Type: application/json",
                *framing,
                *auth,
            ]
            start = b'{"na' if framing[0].startswith("Content") else b'4\r\n{"na\r\n'
            status, body = answer_before_the_body(hub.url, head, start)
            assert (status, body["code"]) == (401, "unauthorized"), (auth, framing, body)


def test_an_anonymous_50_mb_body_costs_the_hub_no_memory(hub: LiveServer) -> None:
    url = f"{hub.url}/api/v1/runs"
    json_type = {"Content-Type": "application/json"}
    process = psutil.Process()
    with httpx.Client(timeout=60) as client:
        client.post(url, content=b"{}", headers=json_type)  # warm up
        before = process.memory_info().rss
        for _ in range(3):
            declared = client.post(
                url, content=chunks(BIG), headers={**json_type, "Content-Length": str(BIG)}
            )
            assert declared.status_code == 413, declared.text
            assert declared.json()["code"] == "too_large"
            assert "RECOGHUB_MAX_JSON_BYTES" in declared.json()["detail"]
            streamed = client.post(url, content=chunks(BIG), headers=json_type)
            assert streamed.status_code == 401, streamed.text
        grown = process.memory_info().rss - before
    assert grown < 40 * MIB, f"RSS grew {grown / MIB:.0f} MB"


def test_a_json_body_over_1_mib_is_413_with_or_without_its_length(hub: LiveServer) -> None:
    url = f"{hub.url}/api/v1/providers"
    headers = {**admin_headers(), "Content-Type": "application/json"}
    # Whitespace pads a valid body to exactly the limit: accepted.
    body = b'{"name": "padded"}'
    padded = body[:-1] + b" " * (MIB - len(body)) + b"}"
    assert len(padded) == MIB
    assert httpx.post(url, content=padded, headers=headers).status_code == 201
    one_more = padded[:-1] + b" }"
    for content in (one_more, iter([one_more[:1000], one_more[1000:]])):
        r = httpx.post(url, content=content, headers=headers)
        assert r.status_code == 413, r.text
        assert r.json()["code"] == "too_large"


def noise_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, format="PNG")
    return out.getvalue()


# aiohttp warns when the dispatcher sends a body over 1 MiB as bytes (not the point here).
@pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning")
def test_uploads_keep_their_own_limits(sqlite_hub: LiveServer) -> None:
    """An image to the relay and a dataset upload may be larger than a JSON body."""
    from sample_recognizer.app import create_recognizer_app
    from sample_recognizer.config import RecognizerConfig

    with (
        live_server(create_recognizer_app(RecognizerConfig())) as recognizer,
        httpx.Client(base_url=sqlite_hub.url, timeout=30) as client,
    ):
        team = register_team(client, [recognizer.url])
        image = noise_png(700)
        assert len(image) > 1.2 * MIB
        r = client.post(
            f"/api/v1/services/{team.service_guid}/recognize",
            content=image,
            headers={**bearer(team.api_key), "Content-Type": "image/png"},
        )
        assert r.status_code == 200, r.text

        lines = "".join(
            f"label{n}\tkey{n}\t{base64.b64encode(noise_png(450)).decode()}\n" for n in range(2)
        ).encode()
        assert len(lines) > 1.2 * MIB
        r = client.post(
            "/api/v1/datasets",
            data={"name": "big", "format": "clickture"},
            files={"file": ("big.tsv", lines)},
            headers=admin_headers(),
        )
        assert r.status_code == 201, r.text
        assert r.json()["images"] == 2

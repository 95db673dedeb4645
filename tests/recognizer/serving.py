"""A live sample recognizer and a client for it, for the tests in this folder."""

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from gateway.protocol.signing import (
    HEADER_REQUEST_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    body_digest,
    sign,
)
from sample_recognizer.app import RecognizerConfig, create_recognizer_app
from tests.servers import live_server


@contextmanager
def recognizer(**config: Any) -> Iterator[httpx.Client]:
    """Serve a recognizer built from `config` on a real uvicorn server; yield a client."""
    with (
        live_server(create_recognizer_app(RecognizerConfig(**config))) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield client


def signed_headers(secret: str, body: bytes, *, timestamp: float | None = None) -> dict[str, str]:
    """The headers the hub sends with a signed request."""
    stamp = str(int(time.time() if timestamp is None else timestamp))
    request_id = uuid.uuid4().hex
    return {
        HEADER_TIMESTAMP: stamp,
        HEADER_REQUEST_ID: request_id,
        HEADER_SIGNATURE: sign(
            secret, timestamp=stamp, request_id=request_id, digest=body_digest(body)
        ),
        "Content-Type": "image/png",
    }

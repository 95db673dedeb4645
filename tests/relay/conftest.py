"""Live sample recognizers and hubs with tighter limits, for the relay and check tests."""

import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.builders import hub_settings
from tests.servers import LiveServer, live_server

SMALL_IMAGE_LIMIT = 64 * 1024
SMALL_PIXEL_LIMIT = 500  # below tests.builders.png_bytes()'s 32x24 = 768 pixels
SHORT_TIMEOUT_S = 0.3


@pytest.fixture
def recognizers() -> Iterator[Callable[..., str]]:
    """Start sample recognizers: `recognizers(answer=..., delay_ms=...)` returns its URL."""
    from sample_recognizer.app import create_recognizer_app
    from sample_recognizer.config import RecognizerConfig

    with ExitStack() as stack:

        def start(**config: object) -> str:
            app = create_recognizer_app(RecognizerConfig(**config))
            return stack.enter_context(live_server(app)).url

        yield start


def _hub(sqlite_url: str, tmp_path: Path, **overrides: object) -> Iterator[LiveServer]:
    """A hub without its embedded dispatch worker: relay and check run in the API process,
    and no test that uses these hubs dispatches a run."""
    from gateway.app import create_app

    settings = hub_settings(sqlite_url, tmp_path / "data", embedded_worker=False, **overrides)
    with live_server(create_app(settings)) as hub:
        yield hub


@pytest.fixture
def tight_hub(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A hub with a 64 KiB image limit, a 0.3 s request timeout and two attempts."""
    yield from _hub(
        sqlite_url,
        tmp_path,
        max_image_bytes=SMALL_IMAGE_LIMIT,
        request_timeout_s=SHORT_TIMEOUT_S,
        max_attempts=2,
    )


@pytest.fixture
def pixel_capped_hub(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A hub that refuses images over SMALL_PIXEL_LIMIT pixels."""
    yield from _hub(sqlite_url, tmp_path, max_image_pixels=SMALL_PIXEL_LIMIT)


@pytest.fixture
def open_hub(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A hub whose organizer lets any provider relay to any service."""
    yield from _hub(sqlite_url, tmp_path, relay_open_to_all_providers=True)


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit grey PNG of `width` x `height` black pixels: ~50 KB on the wire,
    hundreds of megabytes once decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\0" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )

"""Fixtures of the team tool's tests (tests/cli/test_team_*.py)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import png_bytes
from tests.cli.team_tool import recognizer
from tests.servers import LiveServer


@pytest.fixture
def up() -> Iterator[LiveServer]:
    """A sample recognizer answering `cat:0.9;dog:0.1`."""
    with recognizer(answer="cat:0.9;dog:0.1") as server:
        yield server


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "red.png"
    path.write_bytes(png_bytes())
    return path

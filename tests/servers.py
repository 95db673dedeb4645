"""Real uvicorn servers on 127.0.0.1, port 0, each in its own thread and event loop."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway.cli.background import BackgroundServer

LiveServer = BackgroundServer


@contextmanager
def live_server(app: Any) -> Iterator[BackgroundServer]:
    """Serve `app` for the duration of the block; yields the server with its `url`."""
    with BackgroundServer(app) as server:
        yield server

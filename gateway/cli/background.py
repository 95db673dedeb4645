"""An ASGI app served by uvicorn in a background thread (the demo's hub and recognizers)."""

import threading
import time
from typing import Any

import uvicorn

from gateway.config import Settings, get_settings
from gateway.dialout.frames import uvicorn_ws_options
from gateway.listening import listener_options


class BackgroundServer:
    """uvicorn on `host`, port 0 by default (the OS picks a free one); `url` once started.
    Its listener limits are those of `settings` (default: the process's)."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        settings: Settings | None = None,
    ) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            loop="uvloop",
            lifespan="on",
            timeout_graceful_shutdown=2,
            **uvicorn_ws_options(),
            **listener_options(settings or get_settings()),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def start(self, timeout_s: float = 30.0) -> "BackgroundServer":
        """Start serving; raises RuntimeError if the server did not come up."""
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

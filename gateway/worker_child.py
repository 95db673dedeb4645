"""`recoghub serve`'s dispatch worker, in a child process of its own.

The API and the sending worker once shared one event loop and one interpreter: while a
run sent at full speed, the API's answers waited behind the worker's. `recoghub serve`
now starts the standalone worker (`gateway.runs.engine.process.run_worker_process`) as
a child, `python -m gateway.worker_child`, and the API process runs no worker:

- the child holds the SQLite worker lock, registers the worker and dispatches;
- recognizers that connect out reach serve's port: the API process hands each such
  connection to the child (gateway.dialout.handover), which alone sends through it;
- the child stops when serve stops: serve sends it SIGTERM first, and waits for it to
  finish its requests in flight and write their results, before uvicorn closes; if
  serve dies (even kill -9), the child reads end-of-file on its channel and stops the
  same way (the kernel's parent-death signal is a second guard);
- serve starts the child again, after a pause and a log line, when it exits on its own.
"""

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time

from gateway.config import Settings
from gateway.dialout.bridge import ParentBridge, bridge_pair
from gateway.dialout.connections import Connections
from gateway.dialout.handover import channel_pair, send_connection

log = logging.getLogger("recoghub.worker")
RESTART_PAUSE_S = 5.0
# The worker's own grace for requests in flight (engine.worker.SHUTDOWN_GRACE_S) and the
# last writes fit well within this; past it the child is killed.
STOP_TIMEOUT_S = 60.0
REFUSED_EXIT = 3  # another worker holds the SQLite database: starting again is no use
POLL_S = 0.2


class WorkerChild:
    """The API process's handle on its worker child: start, watch, hand over, stop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None
        self._channel: socket.socket | None = None
        self._connections = Connections()
        self._bridge: asyncio.Task[None] | None = None
        self._bridge_end: ParentBridge | None = None
        self._stopping = False
        self._watcher: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, connections: Connections) -> None:
        """Start the child and, on the running loop, watch it until `stop`. The child's
        dial-out connections appear in `connections` (the API dispatcher's registry)."""
        self._connections = connections
        self._spawn()
        self._watcher = asyncio.create_task(self._watch(), name="recoghub-worker-child")

    def _spawn(self) -> None:
        parent, child = channel_pair()
        parent_bridge, child_bridge = bridge_pair()
        # The settings the API process runs with (file limit fitted, --no-worker
        # resolved), not the environment again; the secret files were already read.
        settings = self.settings.model_copy(
            update={"database_url_file": None, "admin_token_file": None}
        )
        parent.sendall(settings.model_dump_json().encode())
        fds = [child.fileno(), child_bridge.fileno()]
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.worker_child", *map(str, fds), str(os.getpid())],
                pass_fds=fds,
                # Its own process group: a Ctrl-C reaches serve, which stops it first.
                process_group=0,
            )
        except OSError:
            parent.close()
            parent_bridge.close()
            raise
        finally:
            child.close()
            child_bridge.close()
        parent.setblocking(False)
        self._channel = parent
        self._bridge_end = bridge = ParentBridge(parent_bridge, self._connections)
        self._bridge = asyncio.create_task(bridge.run(), name="recoghub-worker-bridge")
        log.info("dispatch worker started (pid %d)", self.process.pid)

    async def _watch(self) -> None:
        while not self._stopping:
            await asyncio.sleep(POLL_S)
            process = self.process
            if self._stopping or process is None or process.poll() is None:
                continue
            self._close_channel()
            if process.returncode == REFUSED_EXIT:
                log.warning("the dispatch worker was refused; this hub serves the API only")
                return
            log.warning(
                "the dispatch worker (pid %d) exited with %s; starting it again in %.0f s",
                process.pid,
                process.returncode,
                RESTART_PAUSE_S,
            )
            await asyncio.sleep(RESTART_PAUSE_S)
            if not self._stopping:
                try:
                    self._spawn()
                except OSError as exc:
                    log.error("could not start the dispatch worker: %s", exc)

    async def metrics(self) -> bytes | None:
        """The child's Prometheus text; None while it is not running."""
        bridge = self._bridge_end
        return await bridge.metrics() if bridge is not None and self.running else None

    def hand_over(self, sock: socket.socket, head: bytes) -> bool:
        """Pass a dial-out connection to the child; False when it is not running."""
        channel = self._channel
        if channel is None or not self.running:
            return False
        return send_connection(channel, sock, head)

    async def stop(self) -> None:
        """SIGTERM the child and wait for it to finish (killed past STOP_TIMEOUT_S)."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if process.poll() is None:
                log.error("the dispatch worker did not stop in %.0f s; killing it", STOP_TIMEOUT_S)
                process.kill()
                await asyncio.to_thread(process.wait)
        self._close_channel()

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._bridge is not None:
            self._bridge.cancel()
            self._bridge = None


def _die_with_parent(parent_pid: int) -> None:
    """SIGTERM this process when its parent dies (Linux; end-of-file on the channel
    does the same everywhere)."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> int:
    """The child: read the settings, then run the standalone worker on the channel."""
    from gateway.dialout.handover import MESSAGE_MAX, ServeLink
    from gateway.runs.engine.process import WorkerRefused, run_worker_process
    from gateway.runs.engine.recorder import RecorderGone

    channel = socket.socket(fileno=int(argv[0]))
    bridge = socket.socket(fileno=int(argv[1]))
    _die_with_parent(int(argv[2]))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    data = channel.recv(MESSAGE_MAX)
    if not data:
        return 0  # serve is already gone
    settings = Settings.model_validate_json(data)
    try:
        run_worker_process(settings, handed=ServeLink(channel, bridge))
    except WorkerRefused as refused:
        log.warning("%s", refused)
        return REFUSED_EXIT
    except RecorderGone as gone:
        log.error("%s; the worker stopped (serve starts it again)", gone)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`recoghub serve` and `recoghub demo` as an organizer runs them: their own processes."""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.builders import ADMIN_TOKEN, admin_headers

ROOT = Path(__file__).resolve().parents[2]
RECOGHUB = [sys.executable, "-c", "from gateway.cli.main import main; main()"]
STARTED = re.compile(r"RecogHub listening on (http://127\.0\.0\.1:\d+)")
# Bounds that only stop a hung test; nothing here asserts on time.
WAIT_S = 90.0


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without its RECOGHUB_* settings; temporary files (the
    demo's working directory too) under `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOGHUB_")}
    return {**env, "TMPDIR": str(tmp_path), **extra}


class Stderr:
    """A process's stderr, read line by line in a thread until it ends: the test waits for
    a line without blocking on the pipe, and reads the whole of it at the end."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._stream = proc.stderr
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with self._stream:
            for line in self._stream:
                self.lines.put(line)
        self.lines.put("")  # the end

    def wait_for(self, pattern: re.Pattern[str]) -> re.Match[str]:
        """The first line matching `pattern`; fails if the stream ends or hangs first."""
        deadline = time.monotonic() + WAIT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if not line:
                break
            self.seen.append(line)
            if match := pattern.search(line):
                return match
        raise AssertionError(f"no line matching {pattern.pattern!r}: {''.join(self.seen)}")

    def rest(self) -> str:
        """Everything, once the process has ended."""
        self._thread.join(WAIT_S)
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return "".join(self.seen)


def test_serve_starts_the_hub_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = environment(
        tmp_path,
        RECOGHUB_DATABASE_URL=f"sqlite:///{tmp_path / 'hub.db'}",
        RECOGHUB_DATA_DIR=str(tmp_path / "data"),
        RECOGHUB_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    # Port 0: the OS gives a free port, and the start-up line names it.
    proc = subprocess.Popen(
        [*RECOGHUB, "serve", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = Stderr(proc)
    try:
        url = stderr.wait_for(STARTED)[1]
        ping = httpx.get(f"{url}/api/v1/ping", timeout=30)
        providers = httpx.get(f"{url}/api/v1/providers", headers=admin_headers(), timeout=30)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = stderr.rest()
    assert ping.status_code == 200 and ping.json()["status"] == "ok"
    assert providers.status_code == 200 and providers.json() == []
    # uvicorn shuts down cleanly, then ends by the signal it got (as systemd expects).
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Finished server process" in err and "Traceback" not in err
    assert (tmp_path / "hub.db").exists()


def test_demo_finishes_with_a_leaderboard(tmp_path: Path) -> None:
    done = subprocess.run(
        [*RECOGHUB, "demo"],
        cwd=ROOT,
        env=environment(tmp_path, COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert done.returncode == 0, done.stderr
    assert "leaderboard" in done.stdout
    # One team is behind a firewall: its recognizer connected out and was ranked too.
    assert "opened no port: it connected out to the hub" in done.stdout
    # It says four recognizers, as it runs four, and what the board's figures mean.
    said = " ".join(done.stdout.split())
    assert "; 4 recognizers: 3 at http://127.0.0.1:" in said, said
    assert "and 1 that connects out to the hub" in said
    assert "ranked by top-5; an equal top-5 is" in said
    assert "a p50 smaller than that is still measured, but two p50s closer than that" in said
    assert "Firewalled" in done.stdout.split("leaderboard", 1)[1]
    assert re.search(r"latencies are exact to about \d+\.\d ms", done.stdout), done.stdout
    # Its temporary folder was in the temporary directory it was given, and is gone.
    removed = re.search(r"removed (\S+)", done.stdout)
    assert removed and Path(removed[1]).parent == tmp_path, done.stdout
    assert not list(tmp_path.glob("recoghub-demo-*"))

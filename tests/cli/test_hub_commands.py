"""`recoghub serve` and `recoghub demo` as an organizer runs them: their own processes."""

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.builders import ADMIN_TOKEN, admin_headers

ROOT = Path(__file__).resolve().parents[2]
RECOGHUB = [sys.executable, "-c", "from gateway.cli.main import main; main()"]
STARTED = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")
# Bounds that only stop a hung test; nothing here asserts on time.
WAIT_S = 90.0


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without its RECOGHUB_* settings; temporary files (the
    demo's working directory too) under `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOGHUB_")}
    return {**env, "TMPDIR": str(tmp_path), **extra}


def wait_for_line(proc: subprocess.Popen[str], pattern: re.Pattern[str]) -> re.Match[str]:
    """Read the process's stderr until a line matches; fail if it ends or hangs first."""
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + WAIT_S
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stderr, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.5):
                continue
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if match := pattern.search(line):
                return match
    raise AssertionError(f"no line matching {pattern.pattern!r}; stderr: {''.join(seen)}")


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
    try:
        url = wait_for_line(proc, STARTED)[1]
        ping = httpx.get(f"{url}/api/v1/ping", timeout=30)
        providers = httpx.get(f"{url}/api/v1/providers", headers=admin_headers(), timeout=30)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
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
    workdirs = list(tmp_path.glob("recoghub-demo-*"))
    assert len(workdirs) == 1  # in the temporary directory it was given, nowhere else
    logs = sorted((workdirs[0] / "results").glob("*.jsonl"))
    assert logs and all(log.read_text(encoding="utf-8") for log in logs)

"""`recoghub serve` as the benchmarks run it, and the API's answers timed while it sends.

SPEC §8 states the dispatch figure for "the embedded default as `recoghub serve` starts
it", and the API's responsiveness (leaderboard and run GETs at most 50 ms p50, 150 ms
p99) while a run sends at full speed on it. `serve_process` starts the hub so;
`ApiPoller` asks `GET /api/v1/runs/{id}/leaderboard` and `GET /api/v1/runs/{id}` one at
a time, about every 20 ms, for as long as the run sends.
"""

import http.client
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import cast
from urllib.parse import urlsplit

import httpx
import psutil
from hub_setup import BenchHub, worker_env
from processes import free_port, recoghub_command, start_profilers, stop_processes

POLL_EVERY_S = 0.02


@contextmanager
def serve_process(
    hub: BenchHub,
    *,
    log_path: Path,
    worker: bool = True,
    extra_env: dict[str, str] | None = None,
    timeout_s: float = 60.0,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`recoghub serve` on a free port of 127.0.0.1 (with its dispatch worker unless
    `worker` is False); yields the process and its URL once it answers and, with a
    worker, once that worker has registered. SIGTERM at the end."""
    port = free_port()
    env = worker_env(hub.settings) | (extra_env or {})
    command = [*recoghub_command(), "serve", "--port", str(port)]
    if not worker:
        command.append("--no-worker")
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout_s
            while not _answers(url) or (worker and hub.live_workers() < 1):
                if proc.poll() is not None:
                    raise RuntimeError(f"recoghub serve exited with {proc.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"recoghub serve did not start; see {log_path}")
                time.sleep(0.05)
            yield proc, url
        finally:
            stop_processes([proc], timeout_s=60.0)


@contextmanager
def profiled_children(serve: subprocess.Popen[bytes], profile_dir: Path) -> Iterator[None]:
    """py-spy on serve (the API) and its processes (the sender, its recording process)
    while the block runs (see `start_profilers`)."""
    top = psutil.Process(serve.pid)
    children = [SimpleNamespace(pid=p.pid) for p in [top, *top.children(recursive=True)]]
    profilers = start_profilers(cast(list[subprocess.Popen[bytes]], children), profile_dir)
    try:
        yield
    finally:
        stop_processes(profilers, signal_first=signal.SIGINT)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/ping", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def tree_cpu_seconds(procs: Sequence[subprocess.Popen[bytes]]) -> dict[str, float]:
    """User + system CPU so far: 'api' for serve itself, 'recorder' for the workers'
    recording processes (multiprocessing's spawn children, gateway.runs.engine.recorder),
    'sender' for the worker processes (serve's worker child, or `recoghub worker`)."""
    totals = {"api": 0.0, "sender": 0.0, "recorder": 0.0}
    for proc in procs:
        top = psutil.Process(proc.pid)
        serving = "serve" in top.cmdline()
        times = top.cpu_times()
        totals["api" if serving else "sender"] += times.user + times.system
        for child in top.children(recursive=True):
            try:
                command = " ".join(child.cmdline())
                used = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            if "resource_tracker" in command:
                continue
            part = "recorder" if "spawn_main" in command else "sender"
            totals[part] += used.user + used.system
    return totals


class ApiPoller:
    """A thread asking the run's leaderboard and the run itself, alternately, one
    request at a time, about every POLL_EVERY_S, until `stop()`."""

    def __init__(
        self, url: str, admin_token: str, run_id: int, *, every_s: float = POLL_EVERY_S
    ) -> None:
        self.url = url
        self.every_s = every_s
        self.headers = {"Authorization": f"Bearer {admin_token}"}
        self.run_id = run_id
        self.seconds: dict[str, list[float]] = {"leaderboard": [], "run": []}
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> "ApiPoller":
        if self.every_s > 0:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _poll(self) -> None:
        paths = {
            "leaderboard": f"/api/v1/runs/{self.run_id}/leaderboard",
            "run": f"/api/v1/runs/{self.run_id}",
        }
        # The standard library's client on one kept-alive connection: a GET costs this
        # process about a sixth of httpx's CPU (110 against 600 µs measured here), CPU the
        # hub's processes would otherwise lose on the shared cores. An outside client's
        # cost is not the hub's.
        address = urlsplit(self.url)
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
        try:
            while not self._stop.is_set():
                for name, path in paths.items():
                    started = time.perf_counter()
                    try:
                        connection.request("GET", path, headers=self.headers)
                        response = connection.getresponse()
                        response.read()
                        ok = response.status == 200
                    except (OSError, http.client.HTTPException):
                        connection.close()  # reconnects at the next request
                        ok = False
                    took = time.perf_counter() - started
                    if ok:
                        self.seconds[name].append(took)
                    else:
                        self.failures += 1
                    self._stop.wait(max(0.0, self.every_s - took))
        finally:
            connection.close()

    def summary(self) -> str:
        if self.every_s <= 0:
            return "not asked (--poll-ms 0)"
        parts = []
        for name, seconds in self.seconds.items():
            if len(seconds) < 2:
                parts.append(f"{name}: {len(seconds)} answers")
                continue
            cuts = statistics.quantiles(seconds, n=100, method="inclusive")
            parts.append(
                f"GET {name} p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms,"
                f" max {max(seconds) * 1000:.1f} ms ({len(seconds)} answers)"
            )
        failed = f"; {self.failures} failed" if self.failures else ""
        return "; ".join(parts) + failed + " (target p50 <= 50 ms, p99 <= 150 ms)"

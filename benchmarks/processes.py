"""Processes of a benchmark: the `recoghub` command and its experiments, CPU read from
processes, py-spy on them, and stopping them; the load average, a log's tail, a free port.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import psutil


def recoghub_command(
    *, switch_interval_s: float | None = None, gc_freeze: bool = False, gc_trace: bool = False
) -> list[str]:
    """The `recoghub` console script of this venv. Experiments run the same entry point
    after `sys.setswitchinterval(switch_interval_s)` (GIL hand-over), after importing
    the hub and `gc.freeze()` (so that full collections skip the start-up objects), or
    with the collector's pauses written to the log (`gc_trace`, see gc_trace.py)."""
    script = Path(sys.executable).with_name("recoghub")
    if script.exists() and switch_interval_s is None and not gc_freeze and not gc_trace:
        return [str(script)]
    prelude = ["import sys"]
    if switch_interval_s:
        prelude.append(f"sys.setswitchinterval({switch_interval_s})")
    if gc_trace:
        here = str(Path(__file__).resolve().parent)
        prelude += [f"sys.path.insert(0, {here!r})", "import gc_trace", "gc_trace.install()"]
    prelude.append("from gateway.cli.main import main")
    if gc_freeze:
        prelude += ["import gc, gateway.runs.engine.process", "gc.collect()", "gc.freeze()"]
    return [sys.executable, "-c", "; ".join([*prelude, "main()"])]


def cpu_seconds(procs: Sequence[subprocess.Popen[bytes]]) -> float:
    """User + system CPU time the processes have used so far."""
    total = 0.0
    for proc in procs:
        times = psutil.Process(proc.pid).cpu_times()
        total += times.user + times.system
    return total


def start_profilers(
    procs: Sequence[subprocess.Popen[bytes]], profile_dir: Path, *, gil: bool = False
) -> list[subprocess.Popen[bytes]]:
    """py-spy on each process until it exits; with `gil`, only the thread holding the
    GIL is sampled (which thread keeps the event loop waiting, and how often)."""
    py_spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("profiling needs py-spy: pip install py-spy, or set PY_SPY")
    profile_dir.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(proc.pid),
                "--format",
                "raw",
                "--threads",
                *(["--gil"] if gil else []),
                "--rate",
                "250",
                "--output",
                str(profile_dir / f"pid-{proc.pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for proc in procs
    ]


def stop_processes(
    procs: Sequence[subprocess.Popen[bytes]],
    timeout_s: float = 15.0,
    signal_first: signal.Signals = signal.SIGTERM,
) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal_first)
    for proc in procs:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} cores"


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def free_port() -> int:
    """A port the OS had free a moment ago, for a server started as a subprocess."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port

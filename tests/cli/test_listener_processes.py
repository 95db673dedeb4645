"""`recoghub serve` and `recoghub worker --listen` as an operator starts them: the file
limit raised at start (or the caps fitted below it), and the listener limits of SPEC §9
on the port they open (gateway.listening, gateway.file_limit)."""

import os
import re
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from gateway.db import make_engine
from gateway.migrate import upgrade
from tests.listener_probes import OPEN_HEAD, answer, closed_by_server, connect, poll

RECOGHUB = str(Path(sys.executable).parent / "recoghub")


def file_limit(soft: int, hard: int) -> Callable[[], None]:
    """A preexec_fn: start the process with this RLIMIT_NOFILE, as a unit or shell would."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


def hard_limit() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard < 2048:
        pytest.skip(f"this test needs a finite hard file limit of 2048 or more, not {hard}")
    return hard


def open_files_limit(pid: int) -> tuple[int, int]:
    text = Path(f"/proc/{pid}/limits").read_text()
    found = re.search(r"^Max open files\s+(\d+)\s+(\d+)", text, re.MULTILINE)
    assert found, text
    return int(found[1]), int(found[2])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    database = f"sqlite:///{tmp_path / 'hub.db'}"
    engine = make_engine(database)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return {
        **os.environ,
        "RECOGHUB_DATABASE_URL": database,
        "RECOGHUB_DATA_DIR": str(tmp_path / "data"),
        **{f"RECOGHUB_{k.upper()}": v for k, v in settings.items()},
    }


def start(
    args: list[str], env: dict[str, str], log: Path, limit: Callable[[], None]
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [RECOGHUB, *args],
            env=env,
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=limit,
        )


def port_in(log: Path, pattern: str) -> int | None:
    found = re.search(pattern, log.read_text(errors="replace"))
    return int(found[1]) if found else None


def test_serve_raises_its_file_limit_and_closes_a_trickled_head(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    hard = hard_limit()
    log = tmp_path / "serve.log"
    env = environment(tmp_path, header_timeout_s="1")
    proc = start(["serve", "--port", "0", "--no-worker"], env, log, file_limit(1024, hard))
    processes.append(proc)
    poll(lambda: port_in(log, r"listening on http://127\.0\.0\.1:(\d+)"), "the port", 60)
    port = port_in(log, r"listening on http://127\.0\.0\.1:(\d+)")
    assert port is not None
    poll(lambda: answer(port, PING).startswith(b"HTTP/1.1 200"), "the hub to answer", 60)
    assert open_files_limit(proc.pid) == (hard, hard)
    with connect(port) as sock:
        sock.sendall(OPEN_HEAD)
        assert closed_by_server(sock, trickle=True, bound_s=30), log.read_text()
    assert answer(port, PING).startswith(b"HTTP/1.1 200")


PING = b"GET /api/v1/ping HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n"
WORKER_PORT = r"accepting dial-out recognizers at http://127\.0\.0\.1:(\d+)"


def test_worker_listen_raises_its_file_limit_and_caps_half_open_connections(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    hard = hard_limit()
    log = tmp_path / "worker.log"
    env = environment(tmp_path, header_timeout_s="2", listen_max_handshakes="2")
    proc = start(["worker", "--listen", "127.0.0.1:0"], env, log, file_limit(1024, hard))
    processes.append(proc)
    poll(lambda: port_in(log, WORKER_PORT), "the port", 60)
    port = port_in(log, WORKER_PORT)
    assert port is not None
    assert open_files_limit(proc.pid) == (hard, hard)
    # The connect route's port: any answer (404 here) shows the request was served.
    poll(lambda: answer(port).startswith(b"HTTP/1.1 404"), "the listener to answer", 60)
    with ExitStack() as stack:
        held = [stack.enter_context(connect(port)) for _ in range(2)]
        held[0].sendall(OPEN_HEAD)
        # Usually refused at once; under heavy load the two may already have timed out.
        refused = answer(port)
        assert refused == b"" or refused.startswith(b"HTTP/1.1 404"), refused
        assert closed_by_server(held[0], trickle=True, bound_s=30)
        assert closed_by_server(held[1], trickle=False, bound_s=30)
        poll(lambda: answer(port).startswith(b"HTTP/1.1 404"), "a request after the timeouts")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, log.read_text()


def test_worker_with_a_low_hard_limit_lowers_its_default_cap(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    log = tmp_path / "worker.log"
    proc = start(
        ["worker", "--listen", "127.0.0.1:0"], environment(tmp_path), log, file_limit(1024, 1024)
    )
    processes.append(proc)
    poll(lambda: port_in(log, WORKER_PORT), "the port", 60)
    assert "RECOGHUB_LISTEN_MAX_CONNECTIONS lowered from 4096 to 256" in log.read_text()


@pytest.mark.parametrize(
    "command", [["serve", "--port", "0"], ["worker", "--listen", "127.0.0.1:0"]]
)
def test_caps_set_above_the_file_limit_refuse_to_start_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    env = environment(tmp_path, listen_max_connections="4096")
    done = subprocess.run(
        [RECOGHUB, *command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=file_limit(1024, 1024),
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "RECOGHUB_LISTEN_MAX_CONNECTIONS (4096)" in lines[0]
    assert "may open 1024" in lines[0]

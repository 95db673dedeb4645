"""Dial-out recognizers as the tests run them: real `recoghub-recognizer --connect`
processes, and what a test reads of them."""

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.builders import Team
from tests.runs.api_builders import poll_until

REPO = Path(__file__).resolve().parents[2]


class DialoutProcess:
    """One `recoghub-recognizer --connect` process; its log is in `log_path`."""

    def __init__(self, hub_url: str, team: Team, log_path: Path, *args: str, **env: str) -> None:
        self.log_path = log_path
        command = [
            sys.executable,
            "-m",
            "sample_recognizer",
            "--connect",
            hub_url,
            "--service",
            team.service_guid,
            "--key",
            team.api_key,
            "--secret",
            team.signing_secret,
            *args,
        ]
        environment = {**os.environ, "PYTHONPATH": str(REPO), **env}
        environment.pop("RECOGHUB_HUB", None)
        environment.pop("RECOGHUB_API_KEY", None)
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=REPO, env=environment, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def connections(self) -> int:
        """How many times it said it connected."""
        return self.log().count("connected to ")

    def wait_connected(self, times: int = 1) -> None:
        poll_until(lambda: self.connections() >= times, f"{times} connection(s)\n{self.log()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: it does nothing (no reconnect, no answer) until `resume`; a back-off
        that ran out meanwhile ends at once then (its clock went on)."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.resume()  # a paused process would only take SIGTERM once continued
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


@contextmanager
def dialout_recognizer(
    hub_url: str, team: Team, tmp_path: Path, *args: str, name: str = "dialout", **env: str
) -> Iterator[DialoutProcess]:
    """A connected-out recognizer for the block; yields once it is connected."""
    process = DialoutProcess(hub_url, team, tmp_path / f"{name}.log", *args, **env)
    try:
        process.wait_connected()
        yield process
    finally:
        process.stop()


def gated_args() -> list[str]:
    return ["--backend", "python", "--function", "tests.dialout.gated_model:recognize"]


def attempts_of(row: dict[str, Any]) -> list[dict[str, Any]]:
    log = row.get("attempt_log") or row.get("attempts_log") or []
    return list(log)


@contextmanager
def hub_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record the hub logs meanwhile, uvicorn's own included (uvicorn's loggers do
    not propagate to the root)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield records
    finally:
        for logger in loggers:
            logger.removeHandler(handler)

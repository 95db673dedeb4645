"""`recoghub serve` as an operator starts it: a port in use, an admin token replaced."""

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.auth import ensure_admin_token
from gateway.db import make_engine, make_session_factory, transaction
from gateway.migrate import upgrade


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        finished = subprocess.run(
            [str(Path(sys.executable).parent / "recoghub"), "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={**os.environ, "RECOGHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}"},
        )
    assert finished.returncode == 1
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0]
    assert "--port" in lines[0]


def test_a_configured_admin_token_replacing_the_generated_one_is_logged(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    try:
        with transaction(sessions) as session:
            assert ensure_admin_token(session, None) is not None
        with caplog.at_level(logging.WARNING, logger="recoghub"):
            with transaction(sessions) as session:
                assert ensure_admin_token(session, None) is None
            assert "replaces the admin token" not in caplog.text
            with transaction(sessions) as session:
                assert ensure_admin_token(session, "ra_configured") is None
        assert "RECOGHUB_ADMIN_TOKEN is set: it replaces the admin token" in caplog.text
    finally:
        engine.dispose()

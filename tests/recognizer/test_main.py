"""`recoghub-recognizer` from the command line: what it serves and how it says no."""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from gateway.protocol.signing import HEADER_REQUEST_ID
from sample_recognizer.main import app
from tests.builders import png_bytes
from tests.recognizer.serving import signed_headers

SECRET = "hub-issued-secret"


@contextmanager
def running(
    *args: str, cwd: Path | None = None, stderr: list[str] | None = None, **env: str
) -> Iterator[str]:
    """Run the recognizer as a team would, on a free port; yield the URL it prints.
    `stderr`, if given, gets the lines it wrote there once it has stopped."""
    with subprocess.Popen(
        [sys.executable, "-m", "sample_recognizer", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**os.environ, **env},
    ) as process:
        try:
            assert process.stdout is not None and process.stderr is not None
            line = process.stdout.readline()
            assert "serving on http://127.0.0.1:" in line, process.stderr.read()
            yield line.split()[-1]
        finally:
            process.terminate()
            process.wait(timeout=20)
            if stderr is not None:
                stderr.extend(process.stderr.read().splitlines())


def test_serves_the_url_it_prints() -> None:
    with running("--answer", "zebra:0.6;horse:0.4") as url:
        assert httpx.get(f"{url}/ping").json()["backend"] == "dummy"
        r = httpx.post(f"{url}/recognize", content=png_bytes())
    assert (r.status_code, r.text) == (200, "zebra:0.6;horse:0.4")


def test_takes_the_secret_from_the_environment() -> None:
    body = png_bytes()
    with running(RECOGHUB_RECOGNIZER_SECRET=SECRET) as url:
        unsigned = httpx.post(f"{url}/recognize", content=body)
        signed = httpx.post(f"{url}/recognize", content=body, headers=signed_headers(SECRET, body))
    assert unsigned.status_code == 401
    assert signed.status_code == 200


def test_a_request_signed_with_another_secret_is_logged_on_stderr() -> None:
    body = png_bytes()
    headers = signed_headers(SECRET, body)
    log: list[str] = []
    with running("--secret", "a-wrong-secret", stderr=log) as url:
        r = httpx.post(f"{url}/recognize", content=body, headers=headers)
    assert r.status_code == 401
    [line] = [line for line in log if "answered 401" in line]
    assert f"request {headers[HEADER_REQUEST_ID]}: answered 401 to POST /recognize" in line
    assert "bad signature: signature does not match" in line
    assert "(--secret / RECOGHUB_RECOGNIZER_SECRET)" in line


def test_python_backend_finds_the_teams_module_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "my_model.py").write_text(
        "def recognize(image):\n    return [('husky', 0.81), ('malamute', 0.12)]\n"
    )
    with running("--backend", "python", "--function", "my_model:recognize", cwd=tmp_path) as url:
        r = httpx.post(f"{url}/recognize", content=png_bytes())
    assert (r.status_code, r.text) == (200, "husky:0.81;malamute:0.12")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "python"], "--backend python needs --function module:function"),
        (["--backend", "python", "--function", "nope_x:f"], "cannot import 'nope_x'"),
        (["--backend", "command"], "--backend command needs --command"),
        (["--answer", "cat:0.9;dog"], 'entry 2 "dog" has no ":score"'),
    ],
)
def test_bad_options_give_one_clear_line_and_no_traceback(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.count("\n") == 1
    assert "Traceback" not in result.output


def test_a_busy_port_is_reported_without_a_traceback() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


def test_help_at_80_columns_keeps_every_setting_name_whole() -> None:
    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "sample_recognizer", "--help"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert all(len(line) <= 80 for line in done.stdout.splitlines()), done.stdout
    for name in ("RECOGHUB_RECOGNIZER_SECRET", "RECOGHUB_HUB", "RECOGHUB_API_KEY"):
        assert name in done.stdout, done.stdout
    assert "…" not in done.stdout

"""Secrets read from files (`RECOGHUB_DATABASE_URL_FILE`, `RECOGHUB_ADMIN_TOKEN_FILE`), as
Docker Compose secrets and the deploy files provide them."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.cli.main import app
from gateway.config import Settings, get_settings
from gateway.db import make_engine
from gateway.migrate import current_revision
from tests.builders import bearer, hub_settings
from tests.servers import live_server


def secret(tmp_path: Path, name: str, value: str) -> Path:
    path = tmp_path / name
    path.write_text(value)
    return path


def test_secret_files_win_over_the_variables_and_lose_their_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'from-file.db'}"
    monkeypatch.setenv("RECOGHUB_DATABASE_URL", "sqlite:////image/default.db")
    monkeypatch.setenv("RECOGHUB_DATABASE_URL_FILE", str(secret(tmp_path, "url", url + "\n")))
    monkeypatch.setenv("RECOGHUB_ADMIN_TOKEN_FILE", str(secret(tmp_path, "token", " tok-1\n")))

    settings = Settings()

    assert settings.database_url == url
    assert settings.admin_token == "tok-1"


@pytest.mark.parametrize(
    ("content", "problem"), [(None, "No such file"), ("\n", "is empty"), (b"\xff\xfe", "UTF-8")]
)
def test_an_unusable_secret_file_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | bytes | None, problem: str
) -> None:
    path = tmp_path / "token"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    monkeypatch.setenv("RECOGHUB_ADMIN_TOKEN_FILE", str(path))

    with pytest.raises(ValidationError) as refused:
        Settings()

    assert "RECOGHUB_ADMIN_TOKEN_FILE" in str(refused.value)
    assert str(path) in str(refused.value)
    assert problem in str(refused.value)


def test_migrate_uses_the_database_url_file(tmp_path: Path) -> None:
    database = tmp_path / "hub.db"
    url_file = secret(tmp_path, "url", f"sqlite:///{database}\n")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["migrate"], env={"RECOGHUB_DATABASE_URL_FILE": str(url_file)}
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{database}")
    assert current_revision(engine) is not None
    engine.dispose()


def test_the_hub_accepts_the_admin_token_from_its_file(sqlite_url: str, tmp_path: Path) -> None:
    token_file = secret(tmp_path, "token", "ra_from_a_secret_file\n")
    settings = hub_settings(
        sqlite_url, tmp_path / "data", admin_token=None, admin_token_file=token_file
    )
    with live_server(create_app(settings)) as hub:
        ok = httpx.get(f"{hub.url}/api/v1/providers", headers=bearer("ra_from_a_secret_file"))
        assert ok.status_code == 200
        wrong = httpx.get(f"{hub.url}/api/v1/providers", headers=bearer("ra_from_a_secret"))
        assert wrong.status_code == 401


def test_a_command_names_an_unusable_secret_file_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-token"
    env = {**os.environ, "RECOGHUB_ADMIN_TOKEN_FILE": str(missing)}
    code = "import sys; sys.argv[1:] = ['migrate']; from gateway.cli.main import main; main()"

    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"recoghub: invalid setting RECOGHUB_ADMIN_TOKEN_FILE: cannot read {missing}: "
        "No such file or directory"
    )

"""Shared fixtures: databases (SQLite and PostgreSQL), live hubs and recognizers."""

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import Phase
from hypothesis import settings as hypothesis_settings
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy import create_engine, make_url, text

from gateway.db import make_engine
from gateway.migrate import upgrade
from tests.builders import hub_settings
from tests.servers import LiveServer, live_server

# No example database (a failing example is printed in the failure and can be pinned
# with @example), and Hypothesis's other files in the session's temporary directory:
# nothing of a test run is left in the repository.
# No deadline: a slow example on a loaded machine is not a failure (speed is measured
# by benchmarks/, never by a test).
hypothesis_settings.register_profile("recoghub", database=None, deadline=None)
hypothesis_settings.load_profile("recoghub")


@pytest.hookimpl(trylast=True)  # after pytest's own tmp_path set-up, before collection
def pytest_configure(config: pytest.Config) -> None:
    factory: pytest.TempPathFactory = config._tmp_path_factory  # type: ignore[attr-defined]
    set_hypothesis_home_dir(factory.mktemp("hypothesis"))


# `make mutation` runs the property tests once per mutant: a failing example is enough
# there, shrinking it to the smallest one only costs time.
hypothesis_settings.register_profile(
    "mutation",
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


POSTGRES_URL = os.environ.get("RECOGHUB_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("RECOGHUB_REQUIRE_POSTGRES") == "1"


class PostgresDatabases:
    """Databases this test session creates (and only those it drops), cloned from one
    migrated template so each test starts from a fresh schema quickly."""

    def __init__(self, url: str) -> None:
        self.admin_url = make_url(url)
        self.prefix = f"recoghub_t{uuid.uuid4().hex[:8]}"
        self.template = f"{self.prefix}_tmpl"
        self.created: list[str] = []
        self.admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")

    def url_for(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def _create(self, name: str, template: str | None = None) -> str:
        clause = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self.created.append(name)
        return self.url_for(name)

    def prepare_template(self) -> None:
        engine = make_engine(self._create(self.template))
        upgrade(engine)
        engine.dispose()

    def new(self, migrated: bool = True) -> str:
        name = f"{self.prefix}_{len(self.created)}"
        return self._create(name, self.template if migrated else "template0")

    def drop_all(self) -> None:
        """Drop this session's databases from a process of their own that the session does
        not wait for: each DROP DATABASE waits for a checkpoint, and a hundred of them on a
        busy disk took minutes at the end of a run."""
        self.admin.dispose()
        names = list(reversed(self.created))
        script = (
            "import sys\n"
            "from sqlalchemy import create_engine, text\n"
            "engine = create_engine(sys.argv[1], isolation_level='AUTOCOMMIT')\n"
            "with engine.connect() as conn:\n"
            "    for name in sys.argv[2:]:\n"
            "        conn.execute(text(f'DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)'))\n"
        )
        # Started in the background by a shell that exits at once: the session does not
        # wait for it, and that is the point.
        subprocess.run(
            ["sh", "-c", 'nohup "$0" "$@" >/dev/null 2>&1 &', sys.executable, "-c", script]
            + [self.admin_url.render_as_string(False), *names],
            check=True,
        )


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("RECOGHUB_REQUIRE_POSTGRES=1 but RECOGHUB_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL not configured (set RECOGHUB_TEST_POSTGRES_URL)")
    try:
        databases = PostgresDatabases(POSTGRES_URL)
        databases.prepare_template()
    except Exception as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required but unusable: {exc}")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} unusable: {exc}")
    yield databases
    databases.drop_all()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty (not yet migrated) database on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    databases: PostgresDatabases = request.getfixturevalue("postgres")
    return databases.new(migrated=False)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


def _serve_hub(url: str, data_dir: Path, **overrides: object) -> Iterator[LiveServer]:
    from gateway.app import create_app

    with live_server(create_app(hub_settings(url, data_dir, **overrides))) as server:
        yield server


def _worker(request: pytest.FixtureRequest) -> dict[str, object]:
    """The hub's settings for a test marked `api_only`: no embedded dispatch worker. Such a
    test never dispatches a run, and without the worker's recording process its hub starts
    and stops in a fraction of the time (about 2 s of CPU less a hub)."""
    return {"embedded_worker": False} if request.node.get_closest_marker("api_only") else {}


@pytest.fixture
def hub(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """A live hub on SQLite and on PostgreSQL (admin token: builders.ADMIN_TOKEN)."""
    yield from _serve_hub(database_url, tmp_path / "data", **_worker(request))


@pytest.fixture
def sqlite_hub(
    sqlite_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    """A live hub on SQLite only, for tests whose database path is not the point."""
    yield from _serve_hub(sqlite_url, tmp_path / "data", **_worker(request))


@pytest.fixture
def refused_url() -> Iterator[Callable[[], str]]:
    """Make local base URLs where connections are refused, for the test's lifetime.

    Each holds a socket bound to its port without listening: connecting is refused, and
    no other server (another xdist worker's) can take the port while the test runs, as
    it could when a port is bound to pick it and closed again.
    """
    with ExitStack() as held:

        def make() -> str:
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            return f"http://127.0.0.1:{sock.getsockname()[1]}"

        yield make

"""Fixtures of the registry tests: an httpx client on a live hub (SQLite and PostgreSQL)."""

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect, text

from gateway.db import make_engine
from tests.builders import hub_settings
from tests.servers import LiveServer, live_server


@pytest.fixture
def hub(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The suite's live hub, minus the embedded dispatch worker: the registry never needs it,
    and the hub starts and stops faster without it."""
    from gateway.app import create_app

    settings = hub_settings(database_url, tmp_path / "data", embedded_worker=False)
    with live_server(create_app(settings)) as server:
        yield server


@pytest.fixture
def api(hub: LiveServer) -> Iterator[httpx.Client]:
    """A client of the live hub; each request names its own credentials."""
    with httpx.Client(base_url=hub.url, timeout=10) as client:
        yield client


@pytest.fixture
def database_dump(database_url: str) -> Callable[[], str]:
    """Every row of every table of the hub's database as one string, to search for secrets."""

    def dump() -> str:
        engine = make_engine(database_url)
        try:
            with engine.connect() as conn:
                return "\n".join(
                    repr(tuple(row))
                    for table in inspect(conn).get_table_names()
                    for row in conn.execute(text(f'SELECT * FROM "{table}"'))
                )
        finally:
            engine.dispose()

    return dump

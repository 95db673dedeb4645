"""Fixtures of the registry tests: an httpx client on a live hub (SQLite and PostgreSQL)."""

from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import inspect, text

from gateway.db import make_engine
from tests.servers import LiveServer


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

"""Engine, sessions and the declarative base shared by every table."""

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# Bound for IN (...) lists, well under every driver's parameter limit.
ID_CHUNK = 500


def chunked(values: Sequence[Any], size: int = ID_CHUNK) -> Iterator[Sequence[Any]]:
    """`values` in slices of at most `size`, for IN lists of any length."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


_EPOCH = datetime(1970, 1, 1)


def utcnow() -> datetime:
    """Now in naive UTC, to the microsecond (floored, as `datetime.now`). Built from the
    epoch: `datetime.now(UTC).replace(tzinfo=None)` costs twice as much, and the sender
    reads it for every result."""
    return _EPOCH + timedelta(0, 0, time.time_ns() // 1000)


def from_epoch_us(us: int) -> datetime:
    """`utcnow()`'s value at `time.time_ns() // 1000` (what the sender stamps a result
    with: an int pickles in a tenth of a datetime's time)."""
    return _EPOCH + timedelta(0, 0, us)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and foreign keys."""
    if is_sqlite(url):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # NORMAL under WAL survives a killed process; only power loss can drop
            # the last commits.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with factory() as session, session.begin():
        yield session

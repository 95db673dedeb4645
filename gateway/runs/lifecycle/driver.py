"""Values as the database driver takes and gives them, for the hottest statements, which
bypass SQLAlchemy's types (`items.record_rows`, `items.claim`, `live.merge`): building
each row's parameters through SQLAlchemy costs more than the database's own work. What
is written reads back through SQLAlchemy as if it had written it: JSON as the text of
`json.dumps` with its defaults, a DATETIME on SQLite as SQLAlchemy's own text (naive UTC,
as every time of the hub).
"""

import json
import operator
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection

_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def placeholder(conn: Connection) -> str:
    """The driver's parameter marker (`?` for SQLite, `%s` for psycopg)."""
    return _PLACEHOLDERS[conn.dialect.paramstyle]


def is_sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def _null(value: None) -> None:
    return value


# sqlite3 binds an int, float or text as it is, but looks for an adapter of any other
# value, None too: two failed attribute lookups (and their AttributeErrors) per NULL of
# every row, a third of a microsecond. An adapter of None, found at once, binds it as
# the same NULL (for every sqlite3 connection of the process).
sqlite3.register_adapter(type(None), _null)


def _json_encoder() -> Callable[[Any, int], list[str]] | None:
    """The C encoder `json.dumps` uses with its defaults, made once (building one per call
    is most of `json.dumps`' time): `"".join(encoder(value, 0))` is `json.dumps(value)`.
    None where it is missing or writes another text."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        encoder = make(
            None,
            json.JSONEncoder().default,
            json.encoder.encode_basestring_ascii,
            None,
            ": ",
            ", ",
            False,
            False,
            True,
        )
        sample = [("a", 0.5), {"n": 1, "x": None, "é": 1e-7, "s": 'q"\n', "f": float("nan")}]
        if "".join(encoder(sample, 0)) != json.dumps(sample):
            return None
    except Exception:
        return None
    return cast(Callable[[Any, int], list[str]], encoder)


# `"".join(json_chunks(value, 0))` is `json.dumps(value)`: called so in the loops over a
# batch's rows, one C call.
json_chunks: Callable[[Any, int], list[str]] = _json_encoder() or (
    lambda value, _: [json.dumps(value)]
)


def json_text(value: Any) -> str:
    """`json.dumps(value)`."""
    return "".join(json_chunks(value, 0))


def json_value(stored: Any) -> Any:
    """A JSON column's value as the driver gives it: text on SQLite, already read by
    psycopg."""
    return json.loads(stored) if isinstance(stored, str) else stored


# SQLAlchemy's text of a SQLite DATETIME, which it reads back as the same datetime (a C
# call: no Python frame per row).
sqlite_datetime: Callable[[datetime], str] = operator.methodcaller("isoformat", " ", "microseconds")


def datetime_value(stored: Any) -> datetime | None:
    """A DATETIME column's value as the driver gives it: text on SQLite (as
    `sqlite_datetime` writes it), a datetime from psycopg."""
    return datetime.fromisoformat(stored) if isinstance(stored, str) else stored

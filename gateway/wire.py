"""What the API's shapes share: timestamps with their offset, ids the databases can hold.

The database keeps UTC timestamps without a zone (SQLite hands them back naive), so
every timestamp leaves through `UtcDateTime`: ISO 8601 with `Z` (SPEC §3).

Row ids are INTEGER columns: 32-bit in PostgreSQL (SERIAL), 64-bit in SQLite. A larger
number in a path or a body would reach the driver and fail there (PostgreSQL: "integer
out of range"; SQLite: OverflowError past 2^63), a 500; so `RowId` refuses it as input
(422) before any query, with the same bound on both. `BigInt` bounds a BIGINT column.

Names are trimmed of surrounding white space and stored trimmed, but their length is
checked as sent: the schema's `maxLength` is about the text a client sends, so 201
characters of which the first is a no-break space are refused, not cut to 200.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

MAX_ROW_ID = 2**31 - 1
MAX_BIGINT = 2**63 - 1


def as_utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime; a naive one is taken to be UTC already.

    Raises ValueError (a 422 as input) for a time whose UTC form falls outside years
    1..9999, e.g. `0001-01-01T00:00:00+01:00`.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time in UTC falls outside the years 1 to 9999") from None


UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
# The same bound for an id in a URL path (`/runs/{run_id}`, `/datasets/{dataset_id}`).
RowIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


# What str.strip() removes (every character str.isspace() is true of), spelled out as a
# character class so that the schema's pattern means the same to Python, to Rust and to
# ECMAScript regular expressions (their `\s` differ).
SPACE_CLASS = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = f"[^{SPACE_CLASS}]"


def trimmed(value: str) -> str:
    """`value` without the white space around it."""
    return value.strip()


def not_blank(value: str) -> str:
    """`value` trimmed; raises PydanticCustomError (a 422) when nothing is left."""
    stripped = value.strip()
    if not stripped:
        raise PydanticCustomError("blank", "must not be blank (white space only)")
    return stripped


# A name: 1 to 200 characters as sent, more than white space, stored trimmed.
Name = Annotated[
    str,
    Field(min_length=1, max_length=200, json_schema_extra={"pattern": NOT_BLANK}),
    AfterValidator(not_blank),
]

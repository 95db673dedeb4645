"""What the API's shapes share: timestamps with their offset, ids the databases can hold.

The database keeps UTC timestamps without a zone (SQLite hands them back naive), so
every timestamp leaves through `UtcDateTime`: ISO 8601 with `Z` (SPEC §3).

Row ids are INTEGER columns: 32-bit in PostgreSQL (SERIAL), 64-bit in SQLite. A larger
number in a path or a body would reach the driver and fail there (PostgreSQL: "integer
out of range"; SQLite: OverflowError past 2^63), a 500; so `RowId` refuses it as input
(422) before any query, with the same bound on both. `BigInt` bounds a BIGINT column.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, Field

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

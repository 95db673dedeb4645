"""Every change of a run service's live scores (`live_scores` rows, and for a split run
each part's `live_score_parts` row; the counters: `gateway.scoring.live`).

    create_rows     empty rows for the run services of a new run
    create_part_rows  likewise for each part of a split run
    merge           each run service's (and part's) tally added to its row
    replace         a run service's row set to a tally (a re-send took results back)
    replace_part    likewise one part's row

Stored rows are changed under their row lock (`SELECT ... FOR UPDATE`, in run service
order, `live_scores` before its parts), so that two workers' batches never wait on each
other in a circle. Run services without a row (runs created before live scores) are left
alone.
"""

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import add
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, update

from gateway.runs.lifecycle import driver
from gateway.runs.models import LIVE_SCORE_PARTS, LIVE_SCORES
from gateway.scoring.live import MAX_MS, MIN_MS, LiveTally, bucket_of


@dataclass(slots=True)
class LiveDeltas:
    """Tallies still to be added to the live scores: each run service's, and for a split
    run each (run service, part)'s (`live_score_parts`)."""

    services: dict[int, LiveTally] = field(default_factory=dict)
    parts: dict[tuple[int, str], LiveTally] = field(default_factory=dict)

    def tallies(self, *, run_service_id: int, part: str | None) -> list[LiveTally]:
        """The tallies a result of the run service (in `part`, if split) is added to."""
        found = [self.tally(run_service_id)]
        if part is not None:
            found.append(self.tally(run_service_id, part))
        return found

    def tally(self, run_service_id: int, part: str | None = None) -> LiveTally:
        """The tally of a run service's results (of those in `part`, given one)."""
        if part is None:
            if (found := self.services.get(run_service_id)) is None:
                found = self.services[run_service_id] = LiveTally()
            return found
        if (found := self.parts.get((run_service_id, part))) is None:
            found = self.parts[run_service_id, part] = LiveTally()
        return found

    def merge(self, other: "LiveDeltas") -> None:
        for key, tally in other.services.items():
            self.services.setdefault(key, LiveTally()).merge(tally)
        for part_key, tally in other.parts.items():
            self.parts.setdefault(part_key, LiveTally()).merge(tally)


def create_rows(conn: Connection, *, run_id: int, totals: dict[int, int]) -> None:
    """Empty live scores for the run services of a new run: `totals` maps each run
    service to its number of images."""
    empty = LiveTally().columns()
    conn.execute(
        LIVE_SCORES.insert(),
        [
            {"run_service_id": rs, "run_id": run_id, "images_total": total, **empty}
            for rs, total in totals.items()
        ],
    )


def create_part_rows(conn: Connection, *, run_id: int, totals: dict[tuple[int, str], int]) -> None:
    """Empty live scores of each part of a split run: `totals` maps (run service, part)
    to that part's number of images."""
    empty = LiveTally().columns()
    conn.execute(
        LIVE_SCORE_PARTS.insert(),
        [
            {"run_service_id": rs, "part": part, "run_id": run_id, "images_total": n, **empty}
            for (rs, part), n in totals.items()
        ],
    )


# Every counter column of a row; how the driver takes and gives the JSON and DATETIME ones.
_COUNTERS = tuple(LiveTally().columns())
_JSON = frozenset(name for name in _COUNTERS if isinstance(LIVE_SCORES.c[name].type, JSON))
_TIMES = frozenset(name for name in _COUNTERS if isinstance(LIVE_SCORES.c[name].type, DateTime))
_JSON_OBJECTS = _JSON - {"latency_buckets"}  # JSON but for the histogram (`_HistogramText`)
# The columns that name a row of each table.
_KEYS = {"live_scores": ("run_service_id",), "live_score_parts": ("run_service_id", "part")}


def merge(conn: Connection, *, deltas: LiveDeltas) -> None:
    """Add each run service's tally to its live scores row, locked in run service order,
    then each part's to its part row.

    Straight through the driver (`driver`): a worker merges every batch it records, and
    SQLAlchemy's statements and types cost more than the rows' own work."""
    if not deltas.services:
        return
    _merge(conn, "live_scores", {(rs,): tally for rs, tally in deltas.services.items()})
    if deltas.parts:
        # Locked after `live_scores`, in the same order: two workers never wait in a circle.
        _merge(conn, "live_score_parts", deltas.parts)


class _Prefixes(dict[int, str]):
    """A histogram entry's JSON up to its count: `"bucket": `."""

    def __missing__(self, bucket: int) -> str:
        return f'"{bucket}": '


_PREFIXES = _Prefixes(
    {bucket: f'"{bucket}": ' for bucket in range(bucket_of(MIN_MS), bucket_of(MAX_MS) + 1)}
)


class _HistogramText:
    """A histogram's column as `json.dumps` writes it (`LiveTally.columns`: text keys in
    bucket order), kept entry by entry: a batch rewrites the entries of the buckets it
    counted, not the hundreds of others."""

    __slots__ = ("buckets", "entries")

    def __init__(self, counts: dict[int, int]) -> None:
        self.buckets = sorted(counts)
        self.entries = list(
            map(
                add,
                map(_PREFIXES.__getitem__, self.buckets),
                map(str, map(counts.__getitem__, self.buckets)),
            )
        )

    def update(self, counts: dict[int, int], changed: Iterable[int]) -> None:
        """The entries of the `changed` buckets of `counts` (the histogram after a merge)."""
        buckets, entries = self.buckets, self.entries
        for bucket in changed:
            entry = _PREFIXES[bucket] + str(counts[bucket])
            at = bisect_left(buckets, bucket)
            if at < len(buckets) and buckets[at] == bucket:
                entries[at] = entry
            else:
                buckets.insert(at, bucket)
                entries.insert(at, entry)

    def text(self) -> str:
        return "{" + ", ".join(self.entries) + "}"


@dataclass(slots=True)
class _Written:
    """A live row as this process last wrote it: its values as the driver gives them
    back, the tally they hold, and on SQLite its histogram's text."""

    read: tuple[Any, ...]
    tally: LiveTally
    histogram: _HistogramText | None


# The live rows this process wrote last, by (table, the row's key): a row read back as it
# was written is its tally, not decoded again, and its histogram's JSON is rewritten only
# where a batch counted (decoding and encoding a histogram of hundreds of buckets was most
# of a batch's merge). Any other value (another worker's write, a rolled back one) is
# decoded as ever. An entry is taken out while it is merged, so one that raised midway
# is gone. Emptied past the bound.
_written: dict[tuple[str, tuple[Any, ...]], _Written] = {}
_WRITTEN_MAX = 4096


def _merge(conn: Connection, table: str, deltas: Mapping[tuple[Any, ...], LiveTally]) -> None:
    """Add each tally of `deltas` (by the row's key columns) to its row of `table`: the
    rows of their run services locked in key order, then one executemany."""
    keys = _KEYS[table]
    marker = driver.placeholder(conn)
    sqlite = driver.is_sqlite(conn)
    services = sorted({key[0] for key in deltas})
    locked = conn.exec_driver_sql(
        f"SELECT {', '.join((*keys, *_COUNTERS))} FROM {table} "
        f"WHERE run_service_id IN ({', '.join([marker] * len(services))}) "
        f"ORDER BY {', '.join(keys)}" + ("" if sqlite else " FOR UPDATE"),
        tuple(services),
    ).all()
    params = []
    written = []
    for found in locked:
        key = tuple(found[: len(keys)])
        delta = deltas.get(key)
        if delta is None:
            continue
        read = tuple(found[len(keys) :])
        known = _written.pop((table, key), None)
        histogram = None
        if known is not None and known.read == read:
            tally, histogram = known.tally, known.histogram
        else:
            stored = dict(zip(_COUNTERS, read, strict=True))
            for name in _JSON:
                stored[name] = driver.json_value(stored[name])
            for name in _TIMES:
                stored[name] = driver.datetime_value(stored[name])
            tally = LiveTally.of_columns(stored)
        tally.merge(delta)
        if sqlite:
            if histogram is None:
                histogram = _HistogramText(tally.latency_buckets)
            else:
                histogram.update(tally.latency_buckets, delta.latency_buckets)
            values = tally.columns(buckets_text=histogram.text())
            for name in _JSON_OBJECTS:
                values[name] = driver.json_text(values[name])
            for name in _TIMES:
                if values[name] is not None:
                    values[name] = driver.sqlite_datetime(values[name])
            as_read = tuple(values.values())
        else:
            values = tally.columns()
            as_read = tuple(values.values())  # as psycopg reads it back (JSON parsed)
            for name in _JSON:
                values[name] = driver.json_text(values[name])
        params.append((*values.values(), *key))
        written.append(((table, key), _Written(as_read, tally, histogram)))
    if params:
        sets = ", ".join(f"{name} = {marker}" for name in _COUNTERS)
        where = " AND ".join(f"{name} = {marker}" for name in keys)
        conn.exec_driver_sql(f"UPDATE {table} SET {sets} WHERE {where}", params)
        if len(_written) >= _WRITTEN_MAX:
            _written.clear()
        _written.update(written)


def replace(conn: Connection, *, run_service_id: int, tally: LiveTally) -> None:
    """Set a run service's live scores to `tally` (its row locked by the caller)."""
    conn.execute(
        update(LIVE_SCORES)
        .where(LIVE_SCORES.c.run_service_id == run_service_id)
        .values(**tally.columns())
    )


def replace_part(conn: Connection, *, run_service_id: int, part: str, tally: LiveTally) -> None:
    """Set one part's live scores of a split run's run service to `tally` (locked by the
    caller, after its `live_scores` row)."""
    conn.execute(
        update(LIVE_SCORE_PARTS)
        .where(
            LIVE_SCORE_PARTS.c.run_service_id == run_service_id,
            LIVE_SCORE_PARTS.c.part == part,
        )
        .values(**tally.columns())
    )

"""Live scores in the database: one `live_scores` row per run service, created with the
run (`lifecycle.live.create_rows`; a split run's also one per part, `create_part_rows`) and read by
progress and leaderboard requests (`read_rows`, `read_part_rows`) instead of its work
items. The worker brings a row up to date in the very transaction that
records its results (`gateway.runs.results`); the counters are
`gateway.scoring.live`'s.
"""

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import BindParameter, Connection, Row, Table, Text, bindparam, cast, select

from gateway.db import chunked
from gateway.errors import OUTCOMES
from gateway.runs.models import LIVE_SCORE_PARTS, LIVE_SCORES
from gateway.scoring.live import LiveTally, buckets_of_text


class LiveRow:
    """A run service's live scores as stored. The tally is decoded when first asked for:
    a passed or failed service shows its stored rescore, and its row's decoding was most
    of a finished run's leaderboard."""

    __slots__ = ("_stored", "_tally", "images_total", "run_service_id")

    def __init__(
        self,
        run_service_id: int,
        images_total: int,
        tally: LiveTally | None = None,
        *,
        stored: Mapping[Any, Any] | None = None,
    ) -> None:
        self.run_service_id = run_service_id
        self.images_total = images_total
        self._tally = tally
        self._stored = stored  # the row read, if `tally` is not given

    @property
    def tally(self) -> LiveTally:
        if self._tally is None:
            assert self._stored is not None
            self._tally = _tally(self._stored)
        return self._tally


# The histogram (`latency_buckets`, up to ~2,300 entries) is read as its JSON text, and
# each text decoded once: a run's progress and leaderboard are polled far more often
# than a worker's batch changes a row, and decoding it was most of such a request.
_BUCKETS_TEXT = "latency_buckets_text"
_decoded: dict[str, dict[int, int]] = {}
_DECODED_MAX = 256


def _select(table: Table) -> Any:
    columns = [column for column in table.c if column.name != "latency_buckets"]
    return select(*columns, cast(table.c.latency_buckets, Text).label(_BUCKETS_TEXT))


# Built once (as `progress.run_members`): polled reads, cheaper without building them.
_IDS: BindParameter[int] = bindparam("ids", expanding=True)
_ROWS = _select(LIVE_SCORES).where(LIVE_SCORES.c.run_service_id.in_(_IDS))
_RUN_ROWS = _select(LIVE_SCORES).where(LIVE_SCORES.c.run_id == bindparam("run_id"))
_PART_ROWS = _select(LIVE_SCORE_PARTS).where(
    LIVE_SCORE_PARTS.c.run_service_id.in_(_IDS), LIVE_SCORE_PARTS.c.part == bindparam("part")
)


def _tally(row: Mapping[Any, Any]) -> LiveTally:
    text = row[_BUCKETS_TEXT]
    tally = LiveTally.of_columns({**row, "latency_buckets": None})
    if text is None:
        return tally
    buckets = _decoded.get(text)
    if buckets is None:
        buckets = buckets_of_text(text)
        if len(_decoded) >= _DECODED_MAX:
            _decoded.clear()
        _decoded[text] = buckets
    tally.latency_buckets = dict(buckets)  # the tally's own: a caller may change it
    return tally


def read_part_rows(
    conn: Connection, *, run_service_ids: Collection[int], part: str
) -> dict[int, LiveRow]:
    """The live scores of one part of these run services (those of split runs)."""
    rows: dict[int, LiveRow] = {}
    for ids in chunked(sorted(run_service_ids)):
        rows.update(_by_service(conn.execute(_PART_ROWS, {"ids": list(ids), "part": part})))
    return rows


def read_run_rows(conn: Connection, *, run_id: int) -> dict[int, LiveRow]:
    """The live scores of every service of the run, by run service id: `read_rows` of
    them all, without an IN list (rendering one cost as much as the query)."""
    return _by_service(conn.execute(_RUN_ROWS, {"run_id": run_id}))


def read_rows(conn: Connection, *, run_service_ids: Collection[int]) -> dict[int, LiveRow]:
    """The live scores of these run services, by run service id (those that have one)."""
    rows: dict[int, LiveRow] = {}
    for ids in chunked(sorted(run_service_ids)):
        rows.update(_by_service(conn.execute(_ROWS, {"ids": list(ids)})))
    return rows


def _by_service(found: Iterable[Row[Any]]) -> dict[int, LiveRow]:
    """The rows read (`_select`), by run service id, their tallies decoded when asked for."""
    return {
        row.run_service_id: LiveRow(row.run_service_id, row.images_total, stored=row._mapping)
        for row in found
    }


def outcome_counts(tally: LiveTally) -> dict[str, int]:
    """Counts of every outcome, zeros included, in SPEC order."""
    return {name: tally.outcomes.get(name, 0) for name in OUTCOMES}

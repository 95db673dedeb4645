"""Live scores in the database: one `live_scores` row per run service, created with the
run (`lifecycle.live.create_rows`; a split run's also one per part, `create_part_rows`) and read by
progress and leaderboard requests (`read_rows`, `read_part_rows`) instead of its work
items. The worker brings a row up to date in the very transaction that
records its results (`gateway.runs.results`); the counters are
`gateway.scoring.live`'s.
"""

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, select

from gateway.db import chunked
from gateway.errors import OUTCOMES
from gateway.runs.models import LIVE_SCORE_PARTS, LIVE_SCORES
from gateway.scoring.live import LiveTally


@dataclass(frozen=True, slots=True)
class LiveRow:
    """A run service's live scores as stored."""

    run_service_id: int
    images_total: int
    tally: LiveTally


def read_part_rows(
    conn: Connection, *, run_service_ids: Collection[int], part: str
) -> dict[int, LiveRow]:
    """The live scores of one part of these run services (those of split runs)."""
    rows: dict[int, LiveRow] = {}
    for ids in chunked(sorted(run_service_ids)):
        for row in conn.execute(
            select(LIVE_SCORE_PARTS).where(
                LIVE_SCORE_PARTS.c.run_service_id.in_(ids), LIVE_SCORE_PARTS.c.part == part
            )
        ):
            rows[row.run_service_id] = LiveRow(
                row.run_service_id, row.images_total, LiveTally.of_columns(row._mapping)
            )
    return rows


def read_rows(conn: Connection, *, run_service_ids: Collection[int]) -> dict[int, LiveRow]:
    """The live scores of these run services, by run service id (those that have one)."""
    rows: dict[int, LiveRow] = {}
    for ids in chunked(sorted(run_service_ids)):
        for row in conn.execute(select(LIVE_SCORES).where(LIVE_SCORES.c.run_service_id.in_(ids))):
            rows[row.run_service_id] = LiveRow(
                row.run_service_id, row.images_total, LiveTally.of_columns(row._mapping)
            )
    return rows


def outcome_counts(tally: LiveTally) -> dict[str, int]:
    """Counts of every outcome, zeros included, in SPEC order."""
    return {name: tally.outcomes.get(name, 0) for name in OUTCOMES}

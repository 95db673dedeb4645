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

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from gateway.runs.models import LIVE_SCORE_PARTS, LIVE_SCORES
from gateway.scoring.live import LiveTally


@dataclass(slots=True)
class LiveDeltas:
    """Tallies still to be added to the live scores: each run service's, and for a split
    run each (run service, part)'s (`live_score_parts`)."""

    services: dict[int, LiveTally] = field(default_factory=dict)
    parts: dict[tuple[int, str], LiveTally] = field(default_factory=dict)

    def tallies(self, *, run_service_id: int, part: str | None) -> list[LiveTally]:
        """The tallies a result of the run service (in `part`, if split) is added to."""
        found = [self.services.setdefault(run_service_id, LiveTally())]
        if part is not None:
            found.append(self.parts.setdefault((run_service_id, part), LiveTally()))
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


# Every counter column of a row, set from parameters `v_<column>` (executemany).
_COUNTERS = list(LiveTally().columns())
_UPDATE_ROW = (
    update(LIVE_SCORES)
    .where(LIVE_SCORES.c.run_service_id == bindparam("v_run_service_id"))
    .values({name: bindparam(f"v_{name}", type_=LIVE_SCORES.c[name].type) for name in _COUNTERS})
)
_UPDATE_PART_ROW = (
    update(LIVE_SCORE_PARTS)
    .where(
        LIVE_SCORE_PARTS.c.run_service_id == bindparam("v_run_service_id"),
        LIVE_SCORE_PARTS.c.part == bindparam("v_part"),
    )
    .values(
        {name: bindparam(f"v_{name}", type_=LIVE_SCORE_PARTS.c[name].type) for name in _COUNTERS}
    )
)


def merge(conn: Connection, *, deltas: LiveDeltas) -> None:
    """Add each run service's tally to its live scores row, locked in run service order,
    then each part's to its part row."""
    part_deltas = deltas.parts
    services = deltas.services
    if not services:
        return
    stored = conn.execute(
        select(LIVE_SCORES)
        .where(LIVE_SCORES.c.run_service_id.in_(sorted(services)))
        .order_by(LIVE_SCORES.c.run_service_id)
        .with_for_update()
    ).all()
    params: list[dict[str, Any]] = []
    for found in stored:
        tally = LiveTally.of_columns(found._mapping)
        tally.merge(services[found.run_service_id])
        values = {f"v_{name}": value for name, value in tally.columns().items()}
        params.append({"v_run_service_id": found.run_service_id, **values})
    if params:
        conn.execute(_UPDATE_ROW, params)  # one executemany for every run service
    if part_deltas:
        _merge_parts(conn, part_deltas)


def _merge_parts(conn: Connection, deltas: dict[tuple[int, str], LiveTally]) -> None:
    # Locked after `live_scores`, in the same order: two workers never wait in a circle.
    stored = conn.execute(
        select(LIVE_SCORE_PARTS)
        .where(LIVE_SCORE_PARTS.c.run_service_id.in_(sorted({rs for rs, _ in deltas})))
        .order_by(LIVE_SCORE_PARTS.c.run_service_id, LIVE_SCORE_PARTS.c.part)
        .with_for_update()
    ).all()
    params: list[dict[str, Any]] = []
    for found in stored:
        delta = deltas.get((found.run_service_id, found.part))
        if delta is None:
            continue
        tally = LiveTally.of_columns(found._mapping)
        tally.merge(delta)
        values = {f"v_{name}": value for name, value in tally.columns().items()}
        params.append({"v_run_service_id": found.run_service_id, "v_part": found.part, **values})
    if params:
        conn.execute(_UPDATE_PART_ROW, params)


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

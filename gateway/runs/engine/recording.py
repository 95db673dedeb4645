"""What the writer's batches become where they are recorded (the recording process, or
this process under `DbThreads`): rows turned back into records, recorded and counted in
the live scores in one transaction (`runs.results`), then, once committed, added to the
live scorer of the lane that sent them. The sender neither pickles records (a row is a
plain tuple) nor scores them, and closing a lane needs no pass over its items
(`finish_lane`).

A lane's scorer is keyed by its worker and its serial (`Lane.serial`, one per lane
opened). It is trusted only if it saw every result of its run service: the lane opened
with its service pending (`Lane.scored`), no batch of it lost a lease, at most
`LIVE_SCORING_MAX_IMAGES` (then it is dropped, so memory stays flat, and the service is
scored from the database), which `finish.finish_service` checks against the database.
"""

import operator
import threading
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import Connection

from gateway.runs import finish, results
from gateway.runs.engine.threads import after_commit
from gateway.runs.records import ResultRecord
from gateway.scoring.metrics import ServiceScorer

# A lane scores its results as they are recorded up to this many images (about 56 bytes
# each); a larger run is scored from the database when it ends.
LIVE_SCORING_MAX_IMAGES = 25_000

# A record as a plain tuple of its fields, in their order: `ResultRecord(*row)`.
row_of = operator.attrgetter(*(field.name for field in fields(ResultRecord)))
Row = tuple[Any, ...]
_FIELDS = [field.name for field in fields(ResultRecord)]
_RUN_SERVICE, _OUTCOME, _TAGS, _TRUTH, _LATENCY = (
    _FIELDS.index(name) for name in ("run_service_id", "outcome", "tags", "truth", "latency_ms")
)

# (worker id, lane serial) -> the lane's scorer; None once it cannot be trusted. Fed on
# the hot thread, read and dropped on the cold one.
_scorers: dict[tuple[str, int], ServiceScorer | None] = {}
_lock = threading.Lock()


def _score(written: int, *, worker_id: str, rows: Sequence[Row], scored: dict[int, int]) -> int:
    """Add a committed batch to the scorers of the lanes that send `scored` run services
    (run service id -> lane serial)."""
    if not scored:
        return written
    with _lock:
        for row in rows:
            serial = scored.get(row[_RUN_SERVICE])
            if serial is None:
                continue
            key = (worker_id, serial)
            if key not in _scorers:
                _scorers[key] = ServiceScorer()
            scorer = _scorers[key]
            if scorer is None:
                continue
            if scorer.images >= LIVE_SCORING_MAX_IMAGES:
                _scorers[key] = None
                continue
            try:
                scorer.add(
                    outcome=row[_OUTCOME],
                    tags=row[_TAGS] or (),
                    truth=row[_TRUTH],
                    latency_ms=row[_LATENCY],
                )
            except ValueError:
                _scorers[key] = None  # the database pass will say what is wrong
    return written


@after_commit(_score)
def record_rows(
    conn: Connection, *, worker_id: str, rows: Sequence[Row], scored: dict[int, int]
) -> int:
    """`results.record_scored` of the records `rows` hold (LeaseLost: nothing written,
    nothing scored); then they are scored for the lanes `scored` names."""
    return results.record_scored(
        conn, worker_id=worker_id, batch=[ResultRecord(*row) for row in rows]
    )


def _distrust(written: int, *, worker_id: str, rows: Sequence[Row], scored: dict[int, int]) -> int:
    with _lock:
        for serial in scored.values():
            _scorers[(worker_id, serial)] = None
    return written


@after_commit(_distrust)
def record_rows_checked(
    conn: Connection, *, worker_id: str, rows: Sequence[Row], scored: dict[int, int]
) -> int:
    """`results.record_scored_checked` of `rows`: some were not written, so the scorers of
    the lanes `scored` names can no longer be trusted."""
    return results.record_scored_checked(
        conn, worker_id=worker_id, batch=[ResultRecord(*row) for row in rows]
    )


def _forget(
    final: bool,
    *,
    worker_id: str,
    serial: int | None,
    keep: Sequence[int],
    **_: object,
) -> bool:
    """A final lane's scorer is done with; so are those of the worker's lanes no longer
    open (stopped at a deadline, cancelled, paused)."""
    kept = set(keep)
    if final:
        kept.discard(serial)
    elif serial is not None:
        kept.add(serial)
    with _lock:
        for key in [k for k in _scorers if k[0] == worker_id and k[1] not in kept]:
            del _scorers[key]
    return final


@after_commit(_forget)
def finish_lane(
    conn: Connection,
    *,
    worker_id: str,
    run_service_id: int,
    phase: str,
    serial: int | None,
    elapsed: float | None,
    keep: Sequence[int],
) -> bool:
    """`finish.finish_service` with the live scorer of lane `serial` (None: the lane's is
    not trusted); `keep` are the serials of the worker's other open lanes."""
    with _lock:
        scorer = _scorers.get((worker_id, serial)) if serial is not None else None
    return finish.finish_service(
        conn, run_service_id=run_service_id, phase=phase, scorer=scorer, elapsed=elapsed
    )

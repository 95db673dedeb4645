"""What the writer's batches become where they are recorded (the recording process, or
this process under `DbThreads`): rows recorded as they are and counted in the live scores
in one transaction (`runs.results`), the rows of a lane scored live counted on the way by
a scorer of the batch's own, from which the live scores take their counts (each row is
ranked once); once committed, that scorer is merged into the lane's. The sender neither
pickles records (a row is a plain tuple) nor scores them, and closing a lane needs no
pass over its items (`finish_lane`).

A lane's scorer is keyed by its worker and its serial (`Lane.serial`, one per lane
opened). It is trusted only if it saw every result of its run service: the lane opened
with its service pending (`Lane.scored`), no batch of it lost a lease, at most
`LIVE_SCORING_MAX_IMAGES` (then it is dropped, so memory stays flat, and the service is
scored from the database), which `finish.finish_service` checks against the database.
"""

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection

from gateway.runs import finish, lifecycle, results
from gateway.runs.engine.threads import after_commit
from gateway.runs.records import Row, stored_row
from gateway.scoring.metrics import ServiceScorer

# A lane scores its results as they are recorded up to this many images (about 56 bytes
# each); a larger run is scored from the database when it ends.
LIVE_SCORING_MAX_IMAGES = 25_000

# (worker id, lane serial) -> the lane's scorer; None once it cannot be trusted. Fed on
# the hot thread, read and dropped on the cold one.
_scorers: dict[tuple[str, int], ServiceScorer | None] = {}
_lock = threading.Lock()


def _score(
    recorded: tuple[int, dict[int, ServiceScorer | None]],
    *,
    worker_id: str,
    rows: Sequence[Row],
    scored: dict[int, int],
) -> int:
    """Add a committed batch, scored by run service on the way (`record_rows`), to the
    scorers of the lanes that send `scored` run services (run service id -> lane serial);
    a lane whose rows could not be scored, or over the limit, is trusted no more."""
    written, batch = recorded
    with _lock:
        for run_service_id, serial in scored.items():
            key = (worker_id, serial)
            counted = batch.get(run_service_id)
            if key not in _scorers:
                _scorers[key] = scorer = counted  # the lane's first batch
            elif (scorer := _scorers[key]) is not None:
                if counted is None:
                    _scorers[key] = scorer = None
                else:
                    scorer.merge(counted)
            if scorer is not None and scorer.images > LIVE_SCORING_MAX_IMAGES:
                _scorers[key] = None
    return written


@after_commit(_score)
def record_rows(
    conn: Connection, *, worker_id: str, rows: Sequence[Row], scored: dict[int, int]
) -> tuple[int, dict[int, ServiceScorer | None]]:
    """`results.record_scored` of the records the sender's `rows` hold (`result_row`;
    LeaseLost: nothing written, nothing scored), the rows of the lanes `scored` names that
    are still trusted scored on the way; once committed they are added to those lanes'
    scorers."""
    with _lock:
        scoring = [
            run_service_id
            for run_service_id, serial in scored.items()
            if (worker_id, serial) not in _scorers
            or (
                (scorer := _scorers[worker_id, serial]) is not None
                and scorer.images < LIVE_SCORING_MAX_IMAGES
            )
        ]
    return results.record_scored_rows(
        conn, worker_id=worker_id, rows=list(map(stored_row, rows)), scoring=scoring
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
    return results.record_checked_rows(conn, worker_id=worker_id, rows=list(map(stored_row, rows)))


class LaneEnd(NamedTuple):
    """What closing a lane did (`finish_lane`)."""

    lost: int  # items of a lost claim given back to pending
    final: bool  # the run service is scored and final
    completed: bool  # and its run completed with it


def _forget(
    end: LaneEnd,
    *,
    worker_id: str,
    serial: int | None,
    keep: Sequence[int],
    **_: object,
) -> LaneEnd:
    """A final lane's scorer is done with; so are those of the worker's lanes no longer
    open (stopped at a deadline, cancelled, paused)."""
    kept = set(keep)
    if end.final:
        kept.discard(serial)
    elif serial is not None:
        kept.add(serial)
    with _lock:
        for key in [k for k in _scorers if k[0] == worker_id and k[1] not in kept]:
            del _scorers[key]
    return end


@after_commit(_forget)
def finish_lane(
    conn: Connection,
    *,
    worker_id: str,
    run_service_id: int,
    run_id: int,
    phase: str,
    serial: int | None,
    elapsed: float | None,
    keep: Sequence[int],
    now: datetime,
) -> LaneEnd:
    """Close a lane that has sent and written its last item, in one transaction (a run's
    end waits on each round trip): items still leased to this worker go back to pending,
    the service is scored if all its items are recorded (`finish.finish_service`, with
    the live scorer of lane `serial`; None: not trusted), and the run completes if it
    has no open service left. `keep` are the serials of the worker's other open lanes.

    The worker holds nothing of the lane (and claims nothing for it while it is dry), so
    an item still leased to it is one whose claim committed while the answer was lost
    with the connection: the heartbeat would keep it leased for ever and the run would
    never end."""
    lost = lifecycle.items.give_back(conn, worker_id=worker_id, run_service_ids=[run_service_id])
    with _lock:
        scorer = _scorers.get((worker_id, serial)) if serial is not None else None
    final = finish.finish_service(
        conn, run_service_id=run_service_id, phase=phase, scorer=scorer, elapsed=elapsed
    )
    completed = final and lifecycle.complete_run(conn, run_id=run_id, now=now)
    return LaneEnd(lost, final, completed)

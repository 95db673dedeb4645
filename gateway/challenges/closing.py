"""The end of a phase (SPEC §12): closing by itself, the frozen final ranking, publishing.

A phase stops taking submissions at `closes_at`; its runs stop then as at a deadline
(their deadline is `closes_at`, gateway.runs.engine.deadline: what is not answered is
`missed`). Once none of its runs is queued or running and none of its files is still
`scoring`, the phase closes: the final ranking is computed on the private part from the
runs' stored rescore and kept in `final_ranking`, never computed again. Nobody has to be
there: the dispatch worker's closer (`close_due_phases`, every `CLOSER_EVERY_S`) closes
every phase that is due, so a phase nobody reads closes too; every read of a phase
(`refresh`) and `recoghub challenge close` close it as well. Whoever comes first closes
it, once: the close is a conditional update (`closed_at IS NULL`), so two workers or a
worker and a request never both do.
"""

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, or_, select, update
from sqlalchemy.orm import Session, selectinload

from gateway.challenges.models import Challenge, ChallengePhase, FileState, Submission
from gateway.challenges.schemas import PhaseLeaderboardRow
from gateway.challenges.service import phase_state
from gateway.challenges.standings import leaderboard_rows
from gateway.db import utcnow
from gateway.errors import Conflict
from gateway.runs.models import ACTIVE_RUN_STATES, Run

log = logging.getLogger("recoghub.challenges")

# How often the worker looks for a phase to close: a phase closes this long after its
# runs stopped at the latest (a cheap query of a few rows).
CLOSER_EVERY_S = 1.0


def runs_going(session: Session, *, phase: ChallengePhase) -> bool:
    """Whether a run of the phase's submissions is still queued or running, or a file
    of it still `scoring`: a file accepted before `closes_at` counts, so the final
    ranking waits for its scores as it waits for a run."""
    running = (
        exists()
        .where(Submission.phase_id == phase.id, Submission.run_id == Run.id)
        .where(Run.state.in_(ACTIVE_RUN_STATES))
    )
    scoring = exists().where(Submission.phase_id == phase.id, Submission.state == FileState.SCORING)
    return bool(session.scalar(select(or_(running, scoring))))


def final_ranking(
    session: Session, *, challenge: Challenge, phase: ChallengePhase
) -> list[dict[str, Any]]:
    """The ranking on the private part (all images when nothing is private), as JSON."""
    rows = leaderboard_rows(session, challenge=challenge, phase=phase, part="private")
    return [PhaseLeaderboardRow.of(row).model_dump(mode="json") for row in rows]


def refresh(
    session: Session, *, challenge: Challenge, phase: ChallengePhase, now: datetime | None = None
) -> bool:
    """Close the phase if it is due and its runs have stopped; True when it is closed.
    Commits when it closes it."""
    if phase.closed_at is not None:
        return True
    if phase_state(phase, now=now or utcnow()) != "closing" or runs_going(session, phase=phase):
        return False
    ranking = final_ranking(session, challenge=challenge, phase=phase)
    closed = session.execute(
        update(ChallengePhase)
        .where(ChallengePhase.id == phase.id, ChallengePhase.closed_at.is_(None))
        .values(closed_at=utcnow(), final_ranking=ranking)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.refresh(phase)
    if getattr(closed, "rowcount", 0) == 1:
        # The one place a phase closes (by itself, on a read, or by the organizer); the
        # notifier tells it from `closed_at` (gateway.notify.phases).
        log.info("challenge %s: phase %s closed", challenge.slug, phase.name)
    return True


def close_due_phases(conn: Connection, *, now: datetime) -> list[str]:
    """The worker's closer: close every phase past its `closes_at` whose runs have
    stopped (their deadline is the close, so the worker stops them), freezing its final
    ranking, whether or not anybody reads it. Returns the phases it closed, as
    "slug/phase". Runs in the caller's transaction (`DbThreads.cold`)."""
    session = Session(bind=conn)
    due = session.scalars(
        select(ChallengePhase)
        .options(selectinload(ChallengePhase.challenge))
        .where(ChallengePhase.closed_at.is_(None), ChallengePhase.closes_at <= now)
        .order_by(ChallengePhase.id)
    ).all()
    closed = []
    for phase in due:
        if refresh(session, challenge=phase.challenge, phase=phase, now=now):
            closed.append(f"{phase.challenge.slug}/{phase.name}")
    return closed


def close_now(session: Session, *, challenge: Challenge, phase: ChallengePhase) -> bool:
    """The organizer closes the phase at once: its window ends now (its runs' deadline is
    brought forward, so the worker stops them as at a deadline) and it closes as soon as
    they have stopped. Returns whether it is closed already. Commits."""
    if phase.closed_at is not None:
        return True
    now = utcnow()
    if phase.closes_at > now:
        phase.closes_at = now
        if phase.opens_at > now:
            phase.opens_at = now
        for run in session.scalars(
            select(Run)
            .join(Submission, Submission.run_id == Run.id)
            .where(Submission.phase_id == phase.id, Run.state.in_(ACTIVE_RUN_STATES))
        ):
            run.deadline = now
        session.commit()
    return refresh(session, challenge=challenge, phase=phase, now=now)


def publish(session: Session, *, challenge: Challenge, phase: ChallengePhase) -> ChallengePhase:
    """Show the frozen final ranking to the teams (and, for a public challenge, to
    everyone). Commits. Raises Conflict for a phase not closed yet."""
    if not refresh(session, challenge=challenge, phase=phase):
        state = phase_state(phase)
        raise Conflict(
            f"phase {phase.name} is {state}: its final ranking exists once it has closed and "
            "its runs have stopped (`recoghub challenge close` closes it now)",
            code="phase_not_closed",
        )
    if phase.published_at is None:
        phase.published_at = utcnow()
        session.commit()
    return phase

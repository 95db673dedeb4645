"""Submissions to a challenge phase (SPEC §12): a team's live run within its limit, the
organizer's run of every enrolled service, the submissions a team may see, and the
selection of the ones that count.

The limit is checked in the transaction that creates the run and the submission: the
team's provider row is written first (a no-op update), which takes PostgreSQL's row lock
and SQLite's write lock until commit, so two requests of one team at once are counted
one after the other (as `gateway.runs.team` does for plain dry runs). A submission counts
once it exists; the organizer's count too, though the organizer is never refused.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gateway.auth import Principal
from gateway.challenges.models import (
    Challenge,
    ChallengePhase,
    Counts,
    PhaseKind,
    Submission,
    SubmissionKind,
)
from gateway.challenges.service import is_enrolled, phase_state
from gateway.config import Settings
from gateway.db import utcnow
from gateway.errors import Conflict, Forbidden, InvalidInput, NotFound, OutsideWindow, QuotaExceeded
from gateway.registry.models import Provider, Service
from gateway.registry.service import get_service
from gateway.runs.models import Phase
from gateway.runs.service import create_run
from gateway.scoring.split import Split

DAY = timedelta(days=1)
WEEK = timedelta(days=7)


def stamp(value: datetime) -> str:
    """A naive UTC time on the wire, to the second."""
    return value.replace(microsecond=0).isoformat() + "Z"


@dataclass(frozen=True, slots=True)
class Allowance:
    """A team's submissions to a phase: made, left (None: no limit) and when the next is
    allowed when none is left (None: never, or not limited by time)."""

    made: int
    left: int | None
    next_allowed_at: datetime | None
    last_at: datetime | None


def allowance(
    session: Session, *, phase: ChallengePhase, provider_id: int, now: datetime | None = None
) -> Allowance:
    """How many submissions `provider_id` made to `phase` and has left now."""
    now = now or utcnow()
    times = list(
        session.scalars(
            select(Submission.created_at)
            .where(Submission.phase_id == phase.id, Submission.provider_id == provider_id)
            .order_by(Submission.created_at.desc())
        )
    )
    made = len(times)
    lefts: list[int] = []
    waits: list[datetime] = []
    never = False
    for limit, window in ((phase.per_day, DAY), (phase.per_week, WEEK)):
        if limit is None:
            continue
        recent = [t for t in times if t > now - window]
        lefts.append(max(0, limit - len(recent)))
        if len(recent) >= limit:
            # The oldest of the last `limit` leaves the window first.
            waits.append(recent[limit - 1] + window)
    if phase.total is not None:
        lefts.append(max(0, phase.total - made))
        never = made >= phase.total
    left = min(lefts) if lefts else None
    next_at = None if never or not waits else max(waits)
    return Allowance(made, left, next_at, times[0] if times else None)


def check_window(phase: ChallengePhase, *, now: datetime) -> None:
    """Raise OutsideWindow unless the phase takes submissions now."""
    state = phase_state(phase, now=now)
    if state == "open":
        return
    window = f"{stamp(phase.opens_at)} to {stamp(phase.closes_at)}"
    if state == "upcoming":
        raise OutsideWindow(
            f"phase {phase.name} opens at {stamp(phase.opens_at)} (window {window})",
            code="phase_not_open",
            opens_at=stamp(phase.opens_at),
            closes_at=stamp(phase.closes_at),
        )
    raise OutsideWindow(
        f"phase {phase.name} closed at {stamp(phase.closes_at)} (window {window})",
        code="phase_closed",
        opens_at=stamp(phase.opens_at),
        closes_at=stamp(phase.closes_at),
    )


def _check_limit(
    session: Session, *, phase: ChallengePhase, provider_id: int, now: datetime
) -> None:
    found = allowance(session, phase=phase, provider_id=provider_id, now=now)
    if found.left is None or found.left > 0:
        return
    limits = ", ".join(
        f"{name} {value}"
        for name, value in (
            ("per_day", phase.per_day),
            ("per_week", phase.per_week),
            ("total", phase.total),
        )
        if value is not None
    )
    if found.next_allowed_at is None or found.next_allowed_at >= phase.closes_at:
        raise QuotaExceeded(
            f"your team made {found.made} submissions to phase {phase.name}; its limit "
            f"({limits}) allows no more before it closes at {stamp(phase.closes_at)}",
            retry_after_s=None,
            next_allowed_at=None,
        )
    retry = max(1, math.ceil((found.next_allowed_at - now).total_seconds()))
    raise QuotaExceeded(
        f"your team used up the submission limit of phase {phase.name} ({limits}); the "
        f"next submission is allowed at {stamp(found.next_allowed_at)}",
        retry_after_s=retry,
        next_allowed_at=stamp(found.next_allowed_at),
    )


def take_place(
    session: Session, *, phase: ChallengePhase, provider_id: int, limited: bool, now: datetime
) -> None:
    """Lock the team (a no-op write) and, when `limited`, check its limit: the count holds
    until the caller commits the submission it adds. Every kind of submission comes
    through here. Raises QuotaExceeded."""
    session.execute(update(Provider).where(Provider.id == provider_id).values(id=Provider.id))
    if limited:
        _check_limit(session, phase=phase, provider_id=provider_id, now=now)


def _check_live(phase: ChallengePhase) -> None:
    if phase.kind == PhaseKind.OFFLINE:
        raise InvalidInput(
            f"phase {phase.name} takes prediction files (kind offline), not live runs"
        )


def _start(
    session: Session, *, settings: Settings, phase: ChallengePhase, services: list[Service]
) -> int:
    """Create the run of `services` for `phase` (not committed); returns its id."""
    run = create_run(
        session,
        settings=settings,
        dataset=phase.dataset_id,
        phase=Phase.DRYRUN if phase.dry_run else Phase.EVALUATION,
        service_guids=[s.guid for s in services],
        metric=phase.metric,
        # It stops at the close like at a deadline: what is not answered is `missed`.
        deadline=phase.closes_at,
        split=Split.of(phase.split_seed, phase.public_fraction),
        commit=False,
    )
    return run.id


def submit_live(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    challenge: Challenge,
    phase: ChallengePhase,
    service_guid: str,
) -> Submission:
    """A run of the service `service_guid` over the phase's dataset, as a submission of
    its team. Commits.

    Raises OutsideWindow outside the phase's window; QuotaExceeded past the team's limit
    (the organizer is never refused); Forbidden for another team's service or a team not
    enrolled; InvalidInput for an offline phase (and as `create_run`); NotFound
    (WrongGuidKind) for an unknown service.
    """
    principal.require_caller()
    now = utcnow()
    _check_live(phase)
    check_window(phase, now=now)
    service = get_service(session, guid=service_guid)
    if not principal.is_admin and service.provider_id != principal.provider_id:
        raise Forbidden(f"service {service.guid} belongs to another team; submit your own")
    if service.files:
        raise Conflict(
            f"service {service.guid} holds your team's prediction files; it has no endpoint "
            "to run: submit a file, or one of your services",
            code="files_service",
        )
    baseline = service.guid in (phase.baselines or ())
    if not baseline and not is_enrolled(challenge, provider_id=service.provider_id):
        raise Forbidden(f"the team of service {service.guid} is not enrolled in {challenge.slug}")
    take_place(
        session,
        phase=phase,
        provider_id=service.provider_id,
        limited=not principal.is_admin,
        now=now,
    )
    run_id = _start(session, settings=settings, phase=phase, services=[service])
    submission = Submission(
        phase_id=phase.id,
        provider_id=service.provider_id,
        kind=SubmissionKind.LIVE,
        run_id=run_id,
        service_id=service.id,
        by_organizer=principal.is_admin,
        selected=False,
        created_at=now,
    )
    session.add(submission)
    session.commit()
    return submission


def submit_all(
    session: Session, *, settings: Settings, challenge: Challenge, phase: ChallengePhase
) -> list[Submission]:
    """The organizer's submission of every enabled service of every enrolled team and of
    the phase's baselines: one run of them all (every team gets the images in the same
    order at the same time), one submission each. Commits.

    Raises OutsideWindow, InvalidInput (an offline phase; no service to run).
    """
    now = utcnow()
    _check_live(phase)
    check_window(phase, now=now)
    baselines = set(phase.baselines or ())
    services = [
        s
        for s in session.scalars(
            select(Service).where(Service.enabled.is_(True)).order_by(Service.id)
        )
        if s.guid in baselines or is_enrolled(challenge, provider_id=s.provider_id)
    ]
    if not services:
        raise InvalidInput(f"no enabled service of a team enrolled in {challenge.slug}")
    run_id = _start(session, settings=settings, phase=phase, services=services)
    made = [
        Submission(
            phase_id=phase.id,
            provider_id=s.provider_id,
            kind=SubmissionKind.LIVE,
            run_id=run_id,
            service_id=s.id,
            by_organizer=True,
            selected=False,
            created_at=now,
        )
        for s in services
    ]
    session.add_all(made)
    session.commit()
    return made


def list_submissions(
    session: Session, *, principal: Principal, phase: ChallengePhase
) -> list[Submission]:
    """The phase's submissions, oldest first: all for the organizer, a team's own."""
    principal.require_caller()
    query = select(Submission).where(Submission.phase_id == phase.id).order_by(Submission.id)
    if not principal.is_admin:
        query = query.where(Submission.provider_id == principal.provider_id)
    return list(session.scalars(query))


def get_submission(
    session: Session, *, principal: Principal, phase: ChallengePhase, submission_id: int
) -> Submission:
    """A submission of the phase as the caller may see it (its own); raises NotFound."""
    principal.require_caller()
    found = session.get(Submission, submission_id)
    if (
        found is None
        or found.phase_id != phase.id
        or not (principal.is_admin or found.provider_id == principal.provider_id)
    ):
        raise NotFound(f"no submission {submission_id} of yours in phase {phase.name}")
    return found


def select_submission(
    session: Session,
    *,
    principal: Principal,
    phase: ChallengePhase,
    submission: Submission,
    selected: bool,
) -> Submission:
    """Pick (or drop) a submission as one that counts, in a phase that `counts: selected`,
    before it closes. Commits.

    Raises Conflict for a phase that does not count selections, or past its
    `selection_limit`; OutsideWindow once it closed.
    """
    if phase.counts != Counts.SELECTED:
        raise Conflict(
            f"phase {phase.name} counts the {phase.counts} submission; selecting applies only "
            "to a phase that counts: selected",
            code="not_selectable",
        )
    now = utcnow()
    if now >= phase.closes_at or phase.closed_at is not None:
        check_window(phase, now=now)
    if selected and not submission.selected:
        session.execute(
            update(Provider).where(Provider.id == submission.provider_id).values(id=Provider.id)
        )
        chosen = session.scalar(
            select(func.count()).where(
                Submission.phase_id == phase.id,
                Submission.provider_id == submission.provider_id,
                Submission.selected.is_(True),
            )
        )
        if (chosen or 0) >= phase.selection_limit:
            raise Conflict(
                f"your team selected {chosen} submissions, the most phase {phase.name} allows "
                f"(selection_limit {phase.selection_limit}); unselect one first",
                code="selection_limit",
            )
    submission.selected = selected
    session.commit()
    return submission

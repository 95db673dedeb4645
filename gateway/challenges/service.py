"""Challenges and their phases: create, update, look up, who may see what (SPEC §12).

Who sees a challenge: the organizer every one; a provider those it is enrolled in and
public ones; anyone without a token the public ones. A challenge that the caller may not
see is "not found", so nothing about it leaks.

A change that would alter a scored submission is refused with `Conflict` naming the
field: a phase's dataset, metric, public fraction, seed or kind once it has a
submission, and those and its window once it is closed. Functions that change a
challenge commit once, at their end: a refused change leaves nothing changed.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from gateway.auth import Principal
from gateway.challenges.models import Challenge, ChallengePhase, ChallengeProvider, Submission
from gateway.challenges.schemas import ChallengeCreate, ChallengeUpdate, PhaseCreate, PhaseState
from gateway.datasets.models import Dataset
from gateway.db import utcnow
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.registry.models import Provider, Service
from gateway.registry.schemas import canonical_guid
from gateway.runs.models import ACTIVE_RUN_STATES, Run
from gateway.runs.service import find_dataset
from gateway.wire import MAX_BIGINT, as_utc

# Phase fields a scored submission depends on: not changed once one exists.
SCORED_FIELDS = ("dataset", "metric", "public_fraction", "seed", "kind")


@dataclass(frozen=True, slots=True)
class Change:
    """One change `update_challenge` made, as `recoghub challenge apply` prints it."""

    what: str  # "challenge slug", "phase slug/name"
    field: str
    old: Any
    new: Any


def naive(value: datetime) -> datetime:
    """A time as the database keeps it (naive UTC)."""
    return as_utc(value).replace(tzinfo=None)


def phase_state(phase: ChallengePhase, *, now: datetime | None = None) -> PhaseState:
    now = now or utcnow()
    if phase.published_at is not None:
        return "published"
    if phase.closed_at is not None:
        return "closed"
    if now < phase.opens_at:
        return "upcoming"
    if now < phase.closes_at:
        return "open"
    return "closing"  # past its window; closes once its running submissions stop


# Look-ups


def get_challenge(session: Session, *, slug: str) -> Challenge:
    """The challenge `slug` with its phases; raises NotFound."""
    challenge = session.scalar(
        select(Challenge)
        .options(selectinload(Challenge.phases), selectinload(Challenge.enrolled))
        .where(Challenge.slug == slug.strip())
    )
    if challenge is None:
        raise NotFound(f"no challenge {slug!r}")
    return challenge


def is_enrolled(challenge: Challenge, *, provider_id: int) -> bool:
    return challenge.all_providers or any(e.provider_id == provider_id for e in challenge.enrolled)


def may_see(challenge: Challenge, principal: Principal) -> bool:
    if principal.is_admin or challenge.public:
        return True
    return principal.provider_id is not None and is_enrolled(
        challenge, provider_id=principal.provider_id
    )


def get_challenge_for(session: Session, *, principal: Principal, slug: str) -> Challenge:
    """The challenge as `principal` (perhaps anonymous) may see it; NotFound otherwise."""
    challenge = get_challenge(session, slug=slug)
    if not may_see(challenge, principal):
        raise NotFound(f"no challenge {slug!r}")
    return challenge


def list_challenges(session: Session, *, principal: Principal) -> list[Challenge]:
    """The challenges `principal` may see, oldest first."""
    found = session.scalars(
        select(Challenge)
        .options(selectinload(Challenge.phases), selectinload(Challenge.enrolled))
        .order_by(Challenge.id)
    )
    return [c for c in found if may_see(c, principal)]


def get_phase(challenge: Challenge, *, name: str) -> ChallengePhase:
    """The phase `name` of `challenge`; raises NotFound naming the phases there are."""
    for phase in challenge.phases:
        if phase.name == name:
            return phase
    names = ", ".join(p.name for p in challenge.phases) or "none"
    raise NotFound(f"challenge {challenge.slug!r} has no phase {name!r} (phases: {names})")


def dataset_names(session: Session, phases: Sequence[ChallengePhase]) -> dict[int, str]:
    ids = sorted({p.dataset_id for p in phases})
    if not ids:
        return {}
    return dict(session.execute(select(Dataset.id, Dataset.name).where(Dataset.id.in_(ids))).all())


def enrolled_guids(session: Session, challenge: Challenge) -> Literal["all"] | list[str]:
    if challenge.all_providers:
        return "all"
    ids = [e.provider_id for e in challenge.enrolled]
    if not ids:
        return []
    return list(
        session.scalars(select(Provider.guid).where(Provider.id.in_(ids)).order_by(Provider.id))
    )


def move_deadlines(session: Session, *, phase_id: int, deadline: datetime) -> None:
    """The runs of a phase's submissions still going stop at its (new) close."""
    for run in session.scalars(
        select(Run)
        .join(Submission, Submission.run_id == Run.id)
        .where(Submission.phase_id == phase_id, Run.state.in_(ACTIVE_RUN_STATES))
    ):
        run.deadline = deadline


def has_submissions(session: Session, *, phase_id: int) -> bool:
    return bool(session.scalar(select(exists().where(Submission.phase_id == phase_id))))


# Changes


def create_challenge(session: Session, *, data: ChallengeCreate) -> Challenge:
    """Create a challenge with its phases. Commits.

    Raises Conflict for a slug taken, NotFound for an unknown dataset or provider,
    InvalidInput for a baseline that is not a service.
    """
    if session.scalar(select(exists().where(Challenge.slug == data.slug))):
        raise Conflict(f"challenge {data.slug!r} exists already; PATCH it, or apply the file")
    challenge = Challenge(
        slug=data.slug, title=data.title, description=data.description, public=data.public
    )
    session.add(challenge)
    _set_providers(session, challenge, data.providers)
    session.flush()
    for position, phase_data in enumerate(data.phases):
        challenge.phases.append(_new_phase(session, phase_data, position=position))
    _commit(session, data.slug)
    return challenge


def update_challenge(
    session: Session, *, challenge: Challenge, data: ChallengeUpdate
) -> list[Change]:
    """Apply the fields given; returns what changed (nothing: an empty list). Commits.

    Raises Conflict naming the field for a change that would alter a scored submission
    (SCORED_FIELDS of a phase with submissions, or of a closed phase) or remove a phase
    with submissions; NotFound and InvalidInput as `create_challenge`.
    """
    changes: list[Change] = []
    what = f"challenge {challenge.slug}"
    for name in ("title", "description", "public"):
        new = getattr(data, name)
        if new is not None and getattr(challenge, name) != new:
            changes.append(Change(what, name, getattr(challenge, name), new))
            setattr(challenge, name, new)
    if data.providers is not None:
        old = enrolled_guids(session, challenge)
        _set_providers(session, challenge, data.providers)
        session.flush()
        new_guids = enrolled_guids(session, challenge)
        if old != new_guids:
            changes.append(Change(what, "providers", old, new_guids))
    if data.phases is not None:
        changes.extend(_update_phases(session, challenge, data.phases))
    _commit(session, challenge.slug)
    return changes


def apply_challenge(session: Session, *, data: ChallengeCreate) -> tuple[Challenge, list[Change]]:
    """Create the challenge of `data`, or make the existing one what `data` says (the
    whole of it: `recoghub challenge apply`), in one transaction; returns it and what
    changed (nothing for a file applied before). Commits.

    Raises as `create_challenge` and `update_challenge`; nothing is changed then.
    """
    existing = session.scalar(
        select(Challenge)
        .options(selectinload(Challenge.phases), selectinload(Challenge.enrolled))
        .where(Challenge.slug == data.slug)
    )
    if existing is None:
        created = create_challenge(session, data=data)
        return created, [Change(f"challenge {data.slug}", "challenge", None, "created")]
    update = ChallengeUpdate(
        title=data.title,
        description=data.description,
        public=data.public,
        providers=data.providers,
        phases=data.phases,
    )
    return existing, update_challenge(session, challenge=existing, data=update)


def _commit(session: Session, slug: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"challenge {slug!r} was changed at the same time; try again") from None


def _set_providers(
    session: Session, challenge: Challenge, providers: Literal["all"] | list[str]
) -> None:
    if providers == "all":
        challenge.all_providers = True
        challenge.enrolled = []
        return
    challenge.all_providers = False
    ids: list[int] = []
    for ref in providers:
        provider = _find_provider(session, ref)
        if provider.id not in ids:
            ids.append(provider.id)
    keep = {e.provider_id: e for e in challenge.enrolled}
    challenge.enrolled = [keep.get(i) or ChallengeProvider(provider_id=i) for i in sorted(ids)]


def _find_provider(session: Session, ref: str) -> Provider:
    guid = canonical_guid(ref)
    found = session.scalar(select(Provider).where(Provider.guid == guid)) if guid else None
    if found is None:
        named = list(session.scalars(select(Provider).where(Provider.name == ref.strip()).limit(2)))
        if len(named) > 1:
            raise InvalidInput(f"providers: two providers are named {ref!r}; give its GUID")
        found = named[0] if named else None
    if found is None:
        raise NotFound(f"providers: no provider {ref!r} (give a provider GUID or name)")
    return found


def _phase_values(session: Session, data: PhaseCreate) -> dict[str, Any]:
    """The column values of a phase as written in `data` (not the seed)."""
    try:
        dataset = find_dataset(session, data.dataset)
    except NotFound as error:
        raise NotFound(f"phase {data.name}: dataset: {error.detail}") from None
    return {
        "dataset_id": dataset.id,
        "kind": str(data.kind),
        "metric": data.metric,
        "opens_at": naive(data.opens_at),
        "closes_at": naive(data.closes_at),
        "per_day": data.submission_limit.per_day,
        "per_week": data.submission_limit.per_week,
        "total": data.submission_limit.total,
        "counts": str(data.counts),
        "selection_limit": data.selection_limit,
        "visible": str(data.visible),
        "public_fraction": data.public_fraction,
        "dry_run": data.dry_run,
        "baselines": _baselines(session, data),
        "k": data.k,
    }


def _baselines(session: Session, data: PhaseCreate) -> list[str]:
    guids = []
    for ref in data.baselines:
        guid = canonical_guid(ref)
        if guid is None or not session.scalar(select(exists().where(Service.guid == guid))):
            raise InvalidInput(f"phase {data.name}: baselines: {ref!r} is not a service GUID")
        guids.append(guid)
    return guids


def _new_phase(session: Session, data: PhaseCreate, *, position: int) -> ChallengePhase:
    seed = data.seed if data.seed is not None else random.SystemRandom().randrange(MAX_BIGINT)
    return ChallengePhase(
        position=position, name=data.name, split_seed=seed, **_phase_values(session, data)
    )


# The fields of a phase in the file, and how one maps to a column where it differs.
PHASE_FIELDS = (
    "dataset",
    "kind",
    "metric",
    "opens_at",
    "closes_at",
    "per_day",
    "per_week",
    "total",
    "counts",
    "selection_limit",
    "visible",
    "public_fraction",
    "seed",
    "dry_run",
    "baselines",
    "k",
)
# How a field of the file maps to a column.
_FIELD_COLUMNS = {"dataset": "dataset_id", "seed": "split_seed"}


def _update_phases(
    session: Session, challenge: Challenge, wanted: list[PhaseCreate]
) -> list[Change]:
    changes: list[Change] = []
    existing = {p.name: p for p in challenge.phases}
    names = {p.name for p in wanted}
    for phase in list(challenge.phases):
        if phase.name not in names:
            if has_submissions(session, phase_id=phase.id):
                raise Conflict(
                    f"phase {phase.name}: has submissions and cannot be removed",
                    code="scored_submission",
                )
            challenge.phases.remove(phase)
            changes.append(
                Change(f"phase {challenge.slug}/{phase.name}", "phase", "present", "removed")
            )
    for position, data in enumerate(wanted):
        what = f"phase {challenge.slug}/{data.name}"
        found = existing.get(data.name)
        if found is None:
            challenge.phases.append(_new_phase(session, data, position=position))
            changes.append(Change(what, "phase", None, "created"))
            continue
        phase = found
        values = {"position": position, **_phase_values(session, data)}
        if data.seed is not None:
            values["split_seed"] = data.seed
        scored = phase.closed_at is not None or has_submissions(session, phase_id=phase.id)
        for name in ("position", *PHASE_FIELDS):
            column = _FIELD_COLUMNS.get(name, name)
            if column not in values or getattr(phase, column) == values[column]:
                continue
            if phase.closed_at is not None and name in ("opens_at", "closes_at"):
                raise Conflict(
                    f"phase {data.name}: {name}: a closed phase is not reopened or moved "
                    "(its final ranking is frozen); add a new phase instead",
                    code="phase_closed",
                )
            if scored and name in SCORED_FIELDS:
                why = "is closed" if phase.closed_at is not None else "has submissions"
                raise Conflict(
                    f"phase {data.name}: {name}: cannot change from {getattr(phase, column)!r} to "
                    f"{values[column]!r}: the phase {why}, whose scores depend on it",
                    code="scored_submission",
                )
            old, new = getattr(phase, column), values[column]
            if name == "dataset":
                shown = dataset_names(session, [phase]) | {new: find_dataset(session, new).name}
                old, new = shown.get(old, old), shown[new]
            changes.append(Change(what, name, old, new))
            setattr(phase, column, values[column])
            if name == "closes_at":
                move_deadlines(session, phase_id=phase.id, deadline=values[column])
    return changes

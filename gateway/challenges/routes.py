"""`/api/v1/challenges`: thin routes over the challenge services (SPEC §12).

Who may do what: the organizer everything; an enrolled team reads the challenge, submits
its own services within its limit, sees its own submissions and the leaderboard the
phase shows to teams; anyone may read a public challenge's description, phases and
published leaderboards (names and scores only). Every phase read closes a phase that is
due (gateway.challenges.closing).
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from gateway.auth import Principal
from gateway.challenges import closing, submissions
from gateway.challenges import service as challenges
from gateway.challenges.models import Challenge, ChallengePhase
from gateway.challenges.schemas import (
    AllowanceRead,
    ChallengeApplied,
    ChallengeCreate,
    ChallengeRead,
    ChallengeSummary,
    ChallengeUpdate,
    ChangeRead,
    PhaseLeaderboard,
    PhaseRead,
    SubmissionRead,
)
from gateway.challenges.visibility import (
    leaderboard_csv,
    phase_leaderboard,
    submission_read,
    submission_reads,
)
from gateway.deps import AdminDep, CallerDep, HubStateDep, PrincipalDep, RowIdPath, SessionDep
from gateway.errors import InvalidInput
from gateway.openapi import errors

router = APIRouter(prefix="/challenges", tags=["challenges"])


class SelectBody(BaseModel):
    selected: bool = True


def challenge_read(session: Session, challenge: Challenge, principal: Principal) -> ChallengeRead:
    names = challenges.dataset_names(session, challenge.phases)
    for phase in challenge.phases:
        closing.refresh(session, challenge=challenge, phase=phase)
    enrolled = (
        challenges.is_enrolled(challenge, provider_id=principal.provider_id)
        if principal.provider_id is not None
        else None
    )
    return ChallengeRead.of(
        challenge,
        phases=[_phase_read(session, p, names, principal) for p in challenge.phases],
        providers=challenges.enrolled_guids(session, challenge) if principal.is_admin else None,
        enrolled=enrolled,
    )


def _phase_read(
    session: Session, phase: ChallengePhase, names: dict[int, str], principal: Principal
) -> PhaseRead:
    yours = None
    if principal.provider_id is not None and not principal.is_admin:
        found = submissions.allowance(session, phase=phase, provider_id=principal.provider_id)
        next_at = found.next_allowed_at
        yours = AllowanceRead(
            made=found.made,
            left=found.left,
            # As the 429 says: a time past the close allows nothing.
            next_allowed_at=next_at if next_at is not None and next_at < phase.closes_at else None,
            last_at=found.last_at,
        )
    return PhaseRead.of(
        phase,
        dataset=names.get(phase.dataset_id, ""),
        state=challenges.phase_state(phase),
        organizer=principal.is_admin,
        yours=yours,
    )


def _phase(
    session: Session, principal: Principal, slug: str, name: str
) -> tuple[Challenge, ChallengePhase]:
    challenge = challenges.get_challenge_for(session, principal=principal, slug=slug)
    phase = challenges.get_phase(challenge, name=name)
    closing.refresh(session, challenge=challenge, phase=phase)
    return challenge, phase


@router.get("", responses=errors(401))
def list_challenges(session: SessionDep, principal: PrincipalDep) -> list[ChallengeSummary]:
    """The challenges the caller may see (without a token: the public ones)."""
    return [
        ChallengeSummary(slug=c.slug, title=c.title, public=c.public, phases=len(c.phases))
        for c in challenges.list_challenges(session, principal=principal)
    ]


@router.post("", status_code=201, responses=errors(400, 401, 403, 404, 409, 413, 422))
def create_challenge(
    data: ChallengeCreate, session: SessionDep, principal: AdminDep
) -> ChallengeRead:
    """Create a challenge with its phases (the organizer)."""
    challenge = challenges.create_challenge(session, data=data)
    return challenge_read(session, challenge, principal)


@router.put("/{slug}", responses=errors(400, 401, 403, 404, 409, 413, 422))
def apply_challenge(
    slug: str, data: ChallengeCreate, session: SessionDep, _admin: AdminDep
) -> ChallengeApplied:
    """Create or update the challenge to be what `data` says (`recoghub challenge apply`),
    in one transaction: idempotent; 409 naming the field for a change that would alter a
    scored submission or a closed phase."""
    if data.slug != slug:
        raise InvalidInput(f"slug: the body names {data.slug!r}, the path {slug!r}")
    _, changes = challenges.apply_challenge(session, data=data)
    created = any(change.field == "challenge" for change in changes)
    return ChallengeApplied(
        slug=slug,
        created=created,
        changes=[ChangeRead(what=c.what, field=c.field, old=c.old, new=c.new) for c in changes],
    )


@router.get("/{slug}", responses=errors(401, 404))
def get_challenge(slug: str, session: SessionDep, principal: PrincipalDep) -> ChallengeRead:
    challenge = challenges.get_challenge_for(session, principal=principal, slug=slug)
    return challenge_read(session, challenge, principal)


@router.patch("/{slug}", responses=errors(400, 401, 403, 404, 409, 413, 422))
def update_challenge(
    slug: str, data: ChallengeUpdate, session: SessionDep, principal: AdminDep
) -> ChallengeRead:
    """Change the fields given; 409 (naming the field) for a change that would alter a
    scored submission or a closed phase."""
    challenge = challenges.get_challenge(session, slug=slug)
    challenges.update_challenge(session, challenge=challenge, data=data)
    return challenge_read(session, challenge, principal)


@router.get("/{slug}/phases/{phase}", responses=errors(401, 404))
def get_phase(slug: str, phase: str, session: SessionDep, principal: PrincipalDep) -> PhaseRead:
    challenge, found = _phase(session, principal, slug, phase)
    return _phase_read(session, found, challenges.dataset_names(session, [found]), principal)


@router.get(
    "/{slug}/phases/{phase}/leaderboard",
    response_model=PhaseLeaderboard,
    responses={
        200: {
            "description": "One row per enrolled team, best first: JSON, or CSV (format=csv).",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **errors(401, 403, 404, 422),
    },
)
def get_leaderboard(
    slug: str,
    phase: str,
    session: SessionDep,
    principal: PrincipalDep,
    fmt: Annotated[
        Literal["json", "csv"], Query(alias="format", description="json or csv.")
    ] = "json",
    part: Annotated[
        Literal["public", "private", "all"] | None,
        Query(description="The organizer's choice of images; teams get what the phase shows."),
    ] = None,
) -> Any:
    """While the phase is open: the public part's live scores (teams, if the phase shows
    them live); once closed: the frozen final ranking on the private part (teams and a
    public page once published)."""
    challenge, found = _phase(session, principal, slug, phase)
    board = phase_leaderboard(
        session, challenge=challenge, phase=found, principal=principal, part=part
    )
    if fmt == "csv":
        return Response(
            leaderboard_csv(board),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{slug}-{phase}-leaderboard.csv"'
            },
        )
    return board


@router.get("/{slug}/phases/{phase}/submissions", responses=errors(401, 403, 404))
def list_submissions(
    slug: str, phase: str, session: SessionDep, principal: CallerDep
) -> list[SubmissionRead]:
    """The caller's submissions (the organizer: everyone's), oldest first."""
    challenge, found = _phase(session, principal, slug, phase)
    subs = submissions.list_submissions(session, principal=principal, phase=found)
    return submission_reads(
        session, challenge=challenge, phase=found, principal=principal, subs=subs
    )


@router.post(
    "/{slug}/phases/{phase}/submissions/all",
    status_code=201,
    responses=errors(401, 403, 404, 409, 422),
)
def submit_all(
    slug: str, phase: str, session: SessionDep, principal: AdminDep, state: HubStateDep
) -> list[SubmissionRead]:
    """The organizer's run of every enrolled team's enabled services and the baselines:
    one submission each (they count against the teams' limits)."""
    challenge, found = _phase(session, principal, slug, phase)
    made = submissions.submit_all(
        session, settings=state.settings, challenge=challenge, phase=found
    )
    return submission_reads(
        session, challenge=challenge, phase=found, principal=principal, subs=made
    )


@router.get(
    "/{slug}/phases/{phase}/submissions/{submission_id:int}", responses=errors(401, 403, 404, 422)
)
def get_submission(
    slug: str, phase: str, submission_id: RowIdPath, session: SessionDep, principal: CallerDep
) -> SubmissionRead:
    """One submission: its scores (as the phase shows them to the caller) and its run."""
    challenge, found = _phase(session, principal, slug, phase)
    sub = submissions.get_submission(
        session, principal=principal, phase=found, submission_id=submission_id
    )
    return submission_read(session, challenge=challenge, phase=found, principal=principal, sub=sub)


@router.post(
    "/{slug}/phases/{phase}/submissions/{submission_id}/select",
    responses=errors(400, 401, 403, 404, 409, 413, 422),
)
def select_submission(
    slug: str,
    phase: str,
    submission_id: RowIdPath,
    session: SessionDep,
    principal: CallerDep,
    data: SelectBody | None = None,
) -> SubmissionRead:
    """Pick a submission to count (`{"selected": false}` drops it), in a phase that
    counts selected ones, up to its `selection_limit`, before it closes."""
    challenge, found = _phase(session, principal, slug, phase)
    sub = submissions.get_submission(
        session, principal=principal, phase=found, submission_id=submission_id
    )
    submissions.select_submission(
        session,
        principal=principal,
        phase=found,
        submission=sub,
        selected=data.selected if data is not None else True,
    )
    return submission_read(session, challenge=challenge, phase=found, principal=principal, sub=sub)


@router.post("/{slug}/phases/{phase}/close", responses=errors(401, 403, 404))
def close_phase(slug: str, phase: str, session: SessionDep, principal: AdminDep) -> PhaseRead:
    """End the phase's window now; it closes (final ranking frozen) once its runs stop."""
    challenge, found = _phase(session, principal, slug, phase)
    closing.close_now(session, challenge=challenge, phase=found)
    return _phase_read(session, found, challenges.dataset_names(session, [found]), principal)


@router.post("/{slug}/phases/{phase}/publish", responses=errors(401, 403, 404, 409))
def publish_phase(slug: str, phase: str, session: SessionDep, principal: AdminDep) -> PhaseRead:
    """Show the frozen final ranking to the teams (and a public challenge's visitors)."""
    challenge, found = _phase(session, principal, slug, phase)
    closing.publish(session, challenge=challenge, phase=found)
    return _phase_read(session, found, challenges.dataset_names(session, [found]), principal)

"""What of a phase's scores each caller sees (SPEC §12), in one place:

| caller | phase open (or closing, closed unpublished) | published |
|---|---|---|
| organizer | the public part live (`?part=` any); closed: the final ranking | the final ranking |
| team, `visible: live` | the public part live | the final ranking |
| team, `visible: at_close` | no score at all (403 for the leaderboard) | the final ranking |
| anyone, public challenge | nothing (403) | the final ranking, names and scores only |

A team's own submissions carry their scores on the same part (none with `at_close`
before publication; only that each was accepted and how many images it answered), and
never the private part before publication. The run of a submission shows a team its
own views (a dry-run phase's results, failures, classes; gateway.runs.result_routes) by
`team_run_view`: nothing before publication with `at_close`, and, while a split phase is
not published, only the public part's results (the views that sum over every image are
refused: they would tell the private part's figures). Its progress (`GET /runs/{id}`)
shows a team, while a split phase is not published, the public part's counts only
(`hides_private_part`).
"""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth import Principal
from gateway.challenges.models import Challenge, ChallengePhase, FileState, Submission, Visible
from gateway.challenges.schemas import (
    PhaseLeaderboard,
    PhaseLeaderboardRow,
    Scores,
    ScoringProgress,
    SubmissionRead,
)
from gateway.challenges.service import phase_state
from gateway.challenges.standings import PartName, leaderboard_rows, score_submissions
from gateway.errors import OUTCOMES, Forbidden
from gateway.registry.models import Provider, Service
from gateway.runs.exports import csv_text
from gateway.runs.models import Run
from gateway.scoring.split import Split


def _published(phase: ChallengePhase) -> bool:
    return phase.published_at is not None and phase.final_ranking is not None


def team_part(phase: ChallengePhase) -> PartName | None:
    """The part a team's view shows now; None: no score at all."""
    if _published(phase):
        return "private"
    if phase.visible == Visible.AT_CLOSE:
        return None
    return "public"


def team_run_view(session: Session, *, run: Run) -> Split | None:
    """What a team may see of a run's own views (its leaderboard, results, failures,
    classes, timeline) when the run is a submission to a phase: the split whose private
    part must stay hidden (None: nothing to hide).

    Raises Forbidden while the phase shows no score at all (`visible: at_close` before
    publication).
    """
    phase = session.scalar(
        select(ChallengePhase)
        .join(Submission, Submission.phase_id == ChallengePhase.id)
        .where(Submission.run_id == run.id)
        .limit(1)
    )
    if phase is None:
        return None
    part = team_part(phase)
    if part is None:
        raise Forbidden(
            f"run {run.id} is a submission to phase {phase.name}, which shows no score until "
            "the organizer publishes its final ranking"
        )
    if part == "private":  # published: the phase is over
        return None
    return Split.of(run.split_seed, run.public_fraction)


def hides_private_part(session: Session, *, run: Run) -> bool:
    """Whether a team's view of the run's progress (`GET /runs/{id}`: outcome counts,
    latency, throughput) keeps to the public part: the run is a split submission to a
    phase whose final ranking is not published. Unlike `team_run_view` it never refuses:
    that each submission was accepted and how far it got is always the team's to see."""
    if Split.of(run.split_seed, run.public_fraction) is None:
        return False
    phase = session.scalar(
        select(ChallengePhase)
        .join(Submission, Submission.phase_id == ChallengePhase.id)
        .where(Submission.run_id == run.id)
        .limit(1)
    )
    return phase is not None and not _published(phase)


def phase_leaderboard(
    session: Session,
    *,
    challenge: Challenge,
    phase: ChallengePhase,
    principal: Principal,
    part: PartName | None,
) -> PhaseLeaderboard:
    """The leaderboard as `principal` may see it; raises Forbidden when it sees none."""
    state = phase_state(phase)
    if principal.is_admin:
        if part is None and phase.final_ranking is not None:
            return _final(challenge, phase, state, anonymous=False)
        shown: PartName = part or "public"
        rows = leaderboard_rows(session, challenge=challenge, phase=phase, part=shown)
        return _board(challenge, phase, state, shown, rows)
    if _published(phase):
        return _final(challenge, phase, state, anonymous=principal.anonymous)
    if principal.anonymous:
        raise Forbidden(
            f"the leaderboard of phase {phase.name} is shown here once the organizer publishes "
            "its final ranking"
        )
    if phase.visible == Visible.AT_CLOSE:
        raise Forbidden(
            f"phase {phase.name} shows its leaderboard at close: no score is shown until the "
            "organizer publishes the final ranking"
        )
    rows = leaderboard_rows(session, challenge=challenge, phase=phase, part="public")
    return _board(challenge, phase, state, "public", rows)


def _board(
    challenge: Challenge,
    phase: ChallengePhase,
    state: Any,
    part: PartName,
    rows: list[dict[str, Any]],
) -> PhaseLeaderboard:
    return PhaseLeaderboard(
        challenge=challenge.slug,
        phase=phase.name,
        state=state,
        part=part,
        final=False,
        rows=[PhaseLeaderboardRow.of(r) for r in rows],
    )


def _final(
    challenge: Challenge, phase: ChallengePhase, state: Any, *, anonymous: bool
) -> PhaseLeaderboard:
    rows = [PhaseLeaderboardRow.of(r) for r in phase.final_ranking or ()]
    if anonymous:  # names and scores only
        rows = [
            r.model_copy(
                update={"provider_guid": None, "service_guid": None, "submission_id": None}
            )
            for r in rows
        ]
    part: PartName = next((r.scores.part for r in rows if r.scores is not None), "private")
    return PhaseLeaderboard(
        challenge=challenge.slug, phase=phase.name, state=state, part=part, final=True, rows=rows
    )


LEADERBOARD_CSV_COLUMNS: tuple[str, ...] = (
    "rank",
    "baseline",
    "provider_guid",
    "provider_name",
    "service_guid",
    "service_name",
    "submission_id",
    "submitted_at",
    "submissions",
    "submissions_left",
    "last_submission_at",
    "part",
    "provisional",
    "images",
    "top1",
    "top5",
    "coverage_at_95",
    "coverage_at_99",
    "micro_ap",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "latency_mean_ms",
    *OUTCOMES,
    "images_per_s",
)


def leaderboard_csv(board: PhaseLeaderboard) -> str:
    """The leaderboard's rows as CSV, through the runs' CSV writer."""
    flat: list[dict[str, Any]] = []
    for row in board.rows:
        data = row.model_dump(mode="json")
        scores = data.pop("scores") or {}
        data.update({k: v for k, v in scores.items() if k not in ("latency_ms", "outcomes")})
        data.update({f"latency_{k}_ms": v for k, v in (scores.get("latency_ms") or {}).items()})
        data.update({name: (scores.get("outcomes") or {}).get(name) for name in OUTCOMES})
        for name in ("baseline", "provisional"):
            if isinstance(data.get(name), bool):
                data[name] = "true" if data[name] else "false"
        flat.append(data)
    return csv_text(LEADERBOARD_CSV_COLUMNS, flat)


def submission_reads(
    session: Session,
    *,
    challenge: Challenge,
    phase: ChallengePhase,
    principal: Principal,
    subs: list[Submission],
) -> list[SubmissionRead]:
    """The submissions with the scores the caller may see of them."""
    part = (
        ("private" if phase.final_ranking is not None else "public")
        if principal.is_admin
        else team_part(phase)
    )
    scored = score_submissions(session, subs, part=part or "public")
    providers = {
        p.id: p
        for p in session.query(Provider).filter(Provider.id.in_({s.provider_id for s in subs}))
    }
    services = {
        s.id: s
        for s in session.query(Service).filter(
            Service.id.in_({s.service_id for s in subs if s.service_id})
        )
    }
    reads = []
    for sub in subs:
        found = scored[sub.id]
        service = services.get(sub.service_id or 0)
        reads.append(
            SubmissionRead(
                id=sub.id,
                challenge=challenge.slug,
                phase=phase.name,
                kind="file" if sub.kind == "file" else "live",
                provider_guid=providers[sub.provider_id].guid,
                provider_name=providers[sub.provider_id].name,
                service_guid=service.guid if service else None,
                service_name=service.name if service else None,
                run_id=sub.run_id,
                by_organizer=sub.by_organizer,
                selected=sub.selected,
                created_at=sub.created_at,
                status=found.status,
                images_done=found.done,
                images_total=found.total,
                scores=Scores.model_validate(found.scores)
                if part is not None and found.scores is not None
                else None,
                format=sub.format,
                state=sub.state,  # type: ignore[arg-type]
                size=sub.size,
                error=sub.error,
                progress=_progress(sub),
            )
        )
    return reads


def _progress(sub: Submission) -> ScoringProgress | None:
    if sub.state != FileState.SCORING or sub.progress_stage is None:
        return None
    return ScoringProgress(
        stage=sub.progress_stage,  # type: ignore[arg-type]
        done=sub.progress_done or 0,
        total=sub.progress_total or 0,
    )


def submission_read(
    session: Session,
    *,
    challenge: Challenge,
    phase: ChallengePhase,
    principal: Principal,
    sub: Submission,
) -> SubmissionRead:
    return submission_reads(
        session, challenge=challenge, phase=phase, principal=principal, subs=[sub]
    )[0]

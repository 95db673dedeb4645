"""File submissions (SPEC §13): a prediction file validated, counted, scored and stored
as a run, so failures, per-class figures, exports and the phase leaderboard read it as
they read a live run.

    file_checks     validate the whole file (SubmissionRejected -> FileRejected 422):
                    nothing counts yet
    accept_file     the limit checked and the submission recorded in one transaction
                    (`take_place`, as a live submission), state `scoring`
    score_file      in a thread: the file's answers scored by the runs' scorer
                    (gateway.offline) and written, in one transaction, as a run of the
                    team's `prediction files` service: its work items (one per image,
                    recorded), its live scores (`add_to_live_scores`, each image's part
                    included) and its final scores (`finish_service`); the submission
                    then `scored`, its file deleted
    resume_scoring  on start: every submission left `scoring` is scored again

Exactly once: the run is written in the transaction that moves the submission from
`scoring` to `scored` (a conditional update); a hub stopped mid-way wrote nothing and
scores it again from the file kept under <data_dir>/submissions; two processes scoring
one file write it once. A run of a file never passes through `queued`, so no worker
claims it. The team's `prediction files` service is disabled (never run, never in the
organizer's run of every service) and has no endpoint: it exists so a file's run
service has a service, as every run service does. It is marked `files`: not in the
team's list of services, not counted by its caps, not the team's to enable, change or
delete (gateway.registry).
"""

import contextlib
import logging
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.auth import Principal
from gateway.challenges.file_checks import check_file
from gateway.challenges.file_progress import ProgressWriter
from gateway.challenges.models import (
    Challenge,
    ChallengePhase,
    FileState,
    PhaseKind,
    Submission,
    SubmissionKind,
)
from gateway.challenges.phase_images import PhaseImages, phase_images
from gateway.challenges.service import is_enrolled
from gateway.challenges.submissions import check_window, take_place
from gateway.config import Settings
from gateway.db import utcnow
from gateway.errors import FileRejected, Forbidden
from gateway.offline.answers import RankedAnswers
from gateway.offline.scoring import RESULT_PAGE, ImageResult, score_answers
from gateway.registry.models import Service
from gateway.runs import lifecycle
from gateway.runs.finish import finish_service
from gateway.runs.models import (
    Part,
    Phase,
    Run,
    RunService,
    RunState,
    ServiceStatus,
)
from gateway.runs.records import ResultRecord
from gateway.runs.results import add_to_live_scores
from gateway.scoring.split import Split

log = logging.getLogger(__name__)

FILE_SERVICE_NAME = "prediction files"


def upload_dir(settings: Settings) -> Path:
    path = Path(settings.data_dir) / "submissions"
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_upload(settings: Settings) -> Path:
    """A fresh file name under <data_dir>/submissions for an upload being received."""
    return upload_dir(settings) / f"upload-{secrets.token_hex(12)}"


def check_offline(*, principal: Principal, challenge: Challenge, phase: ChallengePhase) -> int:
    """The team a file of the caller's counts for; raises Forbidden (the organizer, a
    team not enrolled, a live-only phase) and OutsideWindow."""
    principal.require_caller()
    if principal.provider_id is None:
        raise Forbidden("a prediction file is a team's submission; send it with a team's key")
    if not is_enrolled(challenge, provider_id=principal.provider_id):
        raise Forbidden(f"your team is not enrolled in {challenge.slug}")
    if phase.kind == PhaseKind.LIVE:
        raise Forbidden(
            f"phase {phase.name} takes live runs only (kind live): no files, no downloads",
            code="live_only_phase",
        )
    check_window(phase, now=utcnow())
    return principal.provider_id


def accept_file(
    session: Session,
    *,
    phase: ChallengePhase,
    provider_id: int,
    format: str,
    upload: Path,
    size: int,
) -> Submission:
    """Record a validated file as a submission (state `scoring`) once the team's limit
    allows it, in one transaction. Commits. Raises QuotaExceeded, OutsideWindow."""
    now = utcnow()
    check_window(phase, now=now)
    take_place(session, phase=phase, provider_id=provider_id, limited=True, now=now)
    submission = Submission(
        phase_id=phase.id,
        provider_id=provider_id,
        kind=SubmissionKind.FILE,
        by_organizer=False,
        selected=False,
        created_at=now,
        format=format,
        state=FileState.SCORING,
        upload=upload.name,
        size=size,
    )
    session.add(submission)
    session.commit()
    return submission


def _file_service(session: Session, *, provider_id: int) -> Service:
    found = session.scalar(
        select(Service)
        .where(Service.provider_id == provider_id, Service.files.is_(True))
        .order_by(Service.id)
    )
    if found is not None:
        return found
    service = Service(
        guid=str(uuid.uuid4()),
        provider_id=provider_id,
        name=FILE_SERVICE_NAME,
        enabled=False,
        files=True,
        max_concurrency=1,
        signing_secret=secrets.token_hex(16),
    )
    session.add(service)
    session.flush()
    return service


def score_file(
    sessions: sessionmaker[Session],
    *,
    settings: Settings,
    submission_id: int,
    answers: RankedAnswers | None = None,
) -> None:
    """Score a submission left `scoring` and store its results as a run (module doc).
    `answers` are its validated answers when the caller has them; else the stored file
    is read again. A submission already scored is left alone. Its progress is written
    on its row as it goes (file_progress)."""
    progress = ProgressWriter(sessions, submission_id=submission_id)
    with sessions() as session:
        sub = session.get(Submission, submission_id)
        if sub is None or sub.state != FileState.SCORING:
            return
        phase = session.get(ChallengePhase, sub.phase_id)
        assert phase is not None and sub.format is not None and sub.upload is not None
        path = upload_dir(settings) / sub.upload
        format = sub.format
        images = phase_images(session, phase=phase)
        # Nothing held while it is read, searched and scored: the phase is kept as read
        # (detached, so the rollback does not expire it), the reads' transaction ends.
        session.expunge(phase)
        session.rollback()
        if answers is None:
            try:
                answers = check_file(
                    path,
                    format=format,
                    images=images,
                    phase=phase,
                    settings=settings,
                    progress=progress,
                )
            except (OSError, FileRejected) as exc:
                _fail(session, sub, f"the stored file could not be scored: {exc}")
                return
        progress("score", 0, len(images.images))
        if settings.submission_scoring_delay_s:
            time.sleep(settings.submission_scoring_delay_s)
        # Scored before the transaction that stores it opens, so the progress writes
        # (another connection) never wait on its locks (SQLite has one writer). The
        # results are held a moment: one small row per image of the phase, as
        # `images` is.
        results: list[ImageResult] = []
        score_answers(
            answers,
            image_ids=[image.opaque for image in images.images],
            truth=images.truth,
            on_results=results.extend,
            progress=lambda done, total: progress("score", done, total),
        )
        _store(session, sub=sub, phase=phase, images=images, answers=answers, results=results)
    with contextlib.suppress(OSError):
        path.unlink()


def _fail(session: Session, sub: Submission, error: str) -> None:
    session.execute(
        update(Submission)
        .where(Submission.id == sub.id, Submission.state == FileState.SCORING)
        .values(state=FileState.FAILED, error=error[:2000])
    )
    session.commit()


def _store(
    session: Session,
    *,
    sub: Submission,
    phase: ChallengePhase,
    images: PhaseImages,
    answers: RankedAnswers,
    results: list[ImageResult],
) -> None:
    now = utcnow()
    split = Split.of(phase.split_seed, phase.public_fraction)
    service = _file_service(session, provider_id=sub.provider_id)
    run = Run(
        dataset_id=phase.dataset_id,
        phase=Phase.DRYRUN if phase.dry_run else Phase.EVALUATION,
        metric=phase.metric,
        state=RunState.QUEUED,
        seed=0,
        timeout_s=1.0,
        max_attempts=1,
        published=False,
        started_by_id=sub.provider_id,
        stopped_at_deadline=False,
        public_fraction=split.public_fraction if split is not None else None,
        split_seed=split.seed if split is not None else None,
    )
    session.add(run)
    session.flush()
    member = RunService(
        run_id=run.id,
        service_id=service.id,
        position=0,
        max_concurrency=1,
        status=ServiceStatus.PENDING,
    )
    session.add(member)
    session.flush()
    lifecycle.start_stored(run, member, now=now)
    session.flush()  # before the results' statements, which close the service
    conn = session.connection()
    total = len(images.images)
    lifecycle.live.create_rows(conn, run_id=run.id, totals={member.id: total})
    parts = [split.part_of(image.image_id) if split else None for image in images.images]
    if split is not None:
        public = sum(1 for part in parts if part == Part.PUBLIC)
        lifecycle.live.create_part_rows(
            conn,
            run_id=run.id,
            totals={(member.id, Part.PUBLIC): public, (member.id, Part.PRIVATE): total - public},
        )
    written = 0

    def write(page: list[ImageResult]) -> None:
        nonlocal written
        rows: list[dict[str, Any]] = []
        records: list[ResultRecord] = []
        for offset, result in enumerate(page):
            image = images.images[written + offset]
            tags = [(tag, score) for tag, score in result.tags]
            rows.append(
                {
                    "run_id": run.id,
                    "run_service_id": member.id,
                    "image_id": image.image_id,
                    "seq": written + offset,
                    "outcome": result.outcome,
                    "attempts": 1 if result.outcome == "ok" else 0,
                    "tags": [list(pair) for pair in tags],
                    "finished_at": now,
                }
            )
            records.append(
                ResultRecord(
                    item_id=0,
                    run_service_id=member.id,
                    outcome=result.outcome,
                    attempts=1,
                    latency_ms=None,
                    queue_ms=None,
                    http_status=None,
                    request_id=None,
                    raw=None,
                    tags=tags,
                    detail=None,
                    attempt_log=None,
                    finished_at=now,
                    truth=image.truth,
                    part=parts[written + offset],
                )
            )
        lifecycle.items.insert_recorded(conn, rows=rows)
        add_to_live_scores(conn, batch=records)
        written += len(page)

    for first in range(0, len(results), RESULT_PAGE):
        write(results[first : first + RESULT_PAGE])
    finish_service(conn, run_service_id=member.id, phase=run.phase)
    if not answers.has_scores:
        _drop_score_figures(session, member)
    lifecycle.complete_stored(run, now=utcnow())
    moved = conn.execute(
        update(Submission)
        .where(Submission.id == sub.id, Submission.state == FileState.SCORING)
        .values(state=FileState.SCORED, run_id=run.id, service_id=service.id)
    ).rowcount
    if moved != 1:  # another process scored it first: write nothing
        session.rollback()
        return
    session.commit()


# What a file without scores (`ilsvrc`: an order of predictions) cannot have: its tags
# are stored with scores 1/i to keep their order, which are no confidence to rank by.
_UNSCORED = {"coverage_at_95": None, "coverage_at_99": None, "micro_ap": None}


def _drop_score_figures(session: Session, member: RunService) -> None:
    session.refresh(member)
    if member.scores is not None:
        member.scores = {**member.scores, **_UNSCORED}
    if member.part_scores is not None:
        member.part_scores = {
            part: {**figures, **_UNSCORED} for part, figures in member.part_scores.items()
        }
    session.flush()


def resume_scoring(sessions: sessionmaker[Session], *, settings: Settings) -> int:
    """Score every submission left `scoring` (a hub stopped mid-way); returns how many."""
    with sessions() as session:
        ids = list(
            session.scalars(
                select(Submission.id)
                .where(Submission.state == FileState.SCORING)
                .order_by(Submission.id)
            )
        )
    for submission_id in ids:
        try:
            score_file(sessions, settings=settings, submission_id=submission_id)
        except Exception:  # one bad file must not stop the others
            log.exception("scoring submission %s failed", submission_id)
    return len(ids)

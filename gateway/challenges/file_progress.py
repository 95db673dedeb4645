"""A file's progress while it scores, on its submission row (issue 19): the scoring
thread reports every page or block of queries; this writes at most a few times a second,
each in its own short transaction (never the one that stores the results), so
`GET …/submissions/{id}` shows it while the file scores.
"""

import logging
import time

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from gateway.challenges.models import FileState, Submission

log = logging.getLogger(__name__)

# At most this often per submission, and at every change of stage and its last step.
WRITE_EVERY_S = 0.25


class ProgressWriter:
    """The `progress(stage, done, total)` callback of gateway.offline, for one submission."""

    def __init__(self, sessions: sessionmaker[Session], *, submission_id: int) -> None:
        self._sessions = sessions
        self._id = submission_id
        self._stage: str | None = None
        self._written = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        new_stage = stage != self._stage
        if not new_stage and done < total and now - self._written < WRITE_EVERY_S:
            return
        self._stage = stage
        self._written = now
        try:
            with self._sessions() as session:
                session.execute(
                    update(Submission)
                    .where(Submission.id == self._id, Submission.state == FileState.SCORING)
                    .values(progress_stage=stage, progress_done=done, progress_total=total)
                )
                session.commit()
        except SQLAlchemyError:  # progress is for show: the scoring goes on without it
            log.warning("progress of submission %s not written", self._id, exc_info=True)

"""A prediction file checked before it counts (SPEC §13): its format named, the whole
file validated and parsed; every refusal a FileRejected (422) naming the line or array
and what was expected. A descriptor file is read by libhdf5 in a child process with a
time limit (gateway.offline.isolated).
"""

from pathlib import Path

from gateway.challenges.models import ChallengePhase
from gateway.challenges.phase_images import PhaseImages, phase_k
from gateway.config import Settings
from gateway.errors import FileRejected, InvalidInput
from gateway.offline.answers import RankedAnswers
from gateway.offline.errors import SubmissionRejected
from gateway.offline.isolated import read_answers_isolated, validate_isolated
from gateway.offline.submission import FileFormat, StageProgress, file_format, read_answers


def check_file(
    path: Path,
    *,
    format: str,
    images: PhaseImages,
    phase: ChallengePhase,
    settings: Settings,
    progress: StageProgress | None = None,
) -> RankedAnswers:
    """The whole file validated and parsed; raises FileRejected naming the line or array
    and what was expected. A descriptor file is read (and searched, its progress told to
    `progress`) in a child process with a time limit (gateway.offline.isolated): libhdf5
    parses it."""
    try:
        if file_format(format) is FileFormat.ISC_DESCRIPTORS:
            return read_answers_isolated(
                str(path),
                format=format,
                catalogue=images.catalogue,
                k=phase_k(phase),
                max_bytes=settings.submission_max_bytes,
                timeout_s=settings.submission_check_timeout_s,
                progress=progress,
            )
        with path.open("rb") as stream:
            return read_answers(
                stream,
                format=format,
                catalogue=images.catalogue,
                k=phase_k(phase),
                max_bytes=settings.submission_max_bytes,
            )
    except SubmissionRejected as exc:
        raise FileRejected(str(exc), rejection=exc.as_dict()) from None


def validate_file(
    path: Path, *, format: str, images: PhaseImages, phase: ChallengePhase, settings: Settings
) -> RankedAnswers | None:
    """The upload's check before the file counts: as `check_file`, but a descriptor file
    is only validated (None): its search, the slow part, is done once it is accepted,
    with its progress on the submission."""
    if file_format(format) is not FileFormat.ISC_DESCRIPTORS:
        return check_file(path, format=format, images=images, phase=phase, settings=settings)
    try:
        validate_isolated(
            str(path),
            format=format,
            catalogue=images.catalogue,
            max_bytes=settings.submission_max_bytes,
            timeout_s=settings.submission_check_timeout_s,
        )
    except SubmissionRejected as exc:
        raise FileRejected(str(exc), rejection=exc.as_dict()) from None
    return None


def check_format(name: str) -> str:
    try:
        return file_format(name).value
    except SubmissionRejected as exc:
        raise FileRejected(str(exc), rejection=exc.as_dict()) from None


def require_file_format(name: str | None) -> str:
    if not name:
        raise InvalidInput(
            "format: give the file's format (multipart field `format` or `?format=`)"
        )
    return check_format(name)

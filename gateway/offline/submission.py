"""A prediction file from upload to scores: the one call the submission route makes,
in a worker thread or process (it is CPU-bound and blocking).

    read_answers   validate the whole file and parse it (SubmissionRejected: nothing
                   counts), searching nearest references for `isc-descriptors`
    evaluate       read_answers, then score every image of the phase (scoring.py)
"""

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, BinaryIO

from gateway.offline.answers import Catalogue, RankedAnswers
from gateway.offline.descriptors import read_descriptors
from gateway.offline.errors import RejectKind, SubmissionRejected
from gateway.offline.knn import DEFAULT_K, nearest_references
from gateway.offline.matching import read_matching
from gateway.offline.scoring import ImageResult, score_answers
from gateway.offline.text_formats import read_ilsvrc, read_tsv


class FileFormat(StrEnum):
    RECOGHUB_TSV = "recoghub-tsv"
    ILSVRC = "ilsvrc"
    ISC_MATCHING = "isc-matching"
    ISC_DESCRIPTORS = "isc-descriptors"


FORMATS: tuple[str, ...] = tuple(f.value for f in FileFormat)

# progress(stage, done, total): stage "search" (descriptor queries searched) or "score"
# (images scored).
StageProgress = Callable[[str, int, int], None]


def file_format(name: str) -> FileFormat:
    """The format named `name`; raises SubmissionRejected naming the formats."""
    try:
        return FileFormat(name)
    except ValueError:
        raise SubmissionRejected(
            RejectKind.UNKNOWN_FORMAT,
            f'"{name}" is not a prediction file format',
            expected=f"one of {', '.join(FORMATS)}",
            text=name,
        ) from None


def read_answers(
    stream: BinaryIO,
    *,
    format: str,
    catalogue: Catalogue,
    k: int = DEFAULT_K,
    max_bytes: int | None = None,
    progress: StageProgress | None = None,
) -> RankedAnswers:
    """Validate the whole of `stream` as a file of `format` and return its answers.

    Raises SubmissionRejected (naming the line or array and what was expected) for a
    file that cannot count, SubmissionTooLarge past `max_bytes`.
    """
    chosen = file_format(format)
    if chosen is FileFormat.RECOGHUB_TSV:
        return read_tsv(stream, catalogue=catalogue, max_bytes=max_bytes)
    if chosen is FileFormat.ILSVRC:
        return read_ilsvrc(stream, catalogue=catalogue, max_bytes=max_bytes)
    if chosen is FileFormat.ISC_MATCHING:
        return read_matching(stream, catalogue=catalogue, max_bytes=max_bytes)
    descriptors = read_descriptors(stream, catalogue=catalogue, max_bytes=max_bytes)

    def searched(done: int, total: int) -> None:
        if progress is not None:
            progress("search", done, total)

    return nearest_references(descriptors, catalogue=catalogue, k=k, progress=searched)


def evaluate(
    stream: BinaryIO,
    *,
    format: str,
    catalogue: Catalogue,
    truth: Sequence[Sequence[str]],
    k: int = DEFAULT_K,
    max_bytes: int | None = None,
    on_results: Callable[[list[ImageResult]], None] | None = None,
    progress: StageProgress | None = None,
) -> dict[str, Any]:
    """Validate, parse and score a prediction file against the phase's `truth` (the true
    tags of each of `catalogue.image_ids`). `on_results` is first called once the file
    was found valid. Returns the leaderboard fields (`ServiceScorer.result()`).

    Raises SubmissionRejected / SubmissionTooLarge as `read_answers`.
    """
    answers = read_answers(
        stream, format=format, catalogue=catalogue, k=k, max_bytes=max_bytes, progress=progress
    )

    def scored(done: int, total: int) -> None:
        if progress is not None:
            progress("score", done, total)

    return score_answers(
        answers,
        image_ids=catalogue.image_ids,
        truth=truth,
        on_results=on_results,
        progress=scored,
    )

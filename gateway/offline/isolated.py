"""`read_answers` in a child process with a time limit, for the files a C library parses:
an `isc-descriptors` file is read by libhdf5 (or numpy's zip reader), which walks the
file's own structures; a damaged file that made it spin or crash would take a thread of
the hub with it. In a child, a crash is a refusal and a file that takes longer than the
limit is killed and refused (`timed_out`); nothing of it counts.

The child is spawned (not forked: the hub has threads and open connections) and sends
back the validated answers, or the refusal's fields (an exception with keyword-only
arguments does not pickle); before them, its progress (`("progress", (stage, done,
total))`) as it searches, so the submission shows how far it is.

`search=False` only validates (the upload's check before the file counts): the search
is the slow part, done once the file is accepted and shown as progress.
"""

import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from gateway.offline.answers import Catalogue, RankedAnswers
from gateway.offline.descriptors import read_descriptors
from gateway.offline.errors import RejectKind, SubmissionRejected, SubmissionTooLarge
from gateway.offline.knn import DEFAULT_K
from gateway.offline.submission import StageProgress, read_answers

# The child reports its progress at most this often (the pipe is not a log).
_REPORT_EVERY_S = 0.1


class CheckTimedOut(SubmissionRejected):
    def __init__(self, *, limit_s: float) -> None:
        super().__init__(
            RejectKind.TIMED_OUT,
            f"the file was not read within the hub's limit of {limit_s:g} s",
            expected=f"a file the hub reads within {limit_s:g} s "
            "(RECOGHUB_SUBMISSION_CHECK_TIMEOUT_S)",
        )


def _child(
    sender: Connection,
    path: str,
    format: str,
    catalogue: Catalogue,
    k: int,
    max_bytes: int,
    search: bool,
) -> None:
    reported = 0.0

    def report(stage: str, done: int, total: int) -> None:
        nonlocal reported
        now = time.monotonic()
        if done < total and now - reported < _REPORT_EVERY_S:
            return
        reported = now
        sender.send(("progress", (stage, done, total)))

    try:
        with open(path, "rb") as stream:
            found: Any = None
            if search:
                found = read_answers(
                    stream,
                    format=format,
                    catalogue=catalogue,
                    k=k,
                    max_bytes=max_bytes,
                    progress=report,
                )
            else:
                read_descriptors(stream, catalogue=catalogue, max_bytes=max_bytes)
        sender.send(("ok", found))
    except SubmissionTooLarge:
        sender.send(("too_large", max_bytes))
    except SubmissionRejected as exc:
        sender.send(("rejected", (exc.kind.value, exc.problem, exc.as_dict())))
    finally:
        sender.close()


def read_answers_isolated(
    path: str,
    *,
    format: str,
    catalogue: Catalogue,
    k: int = DEFAULT_K,
    max_bytes: int,
    timeout_s: float,
    progress: StageProgress | None = None,
) -> RankedAnswers:
    """`read_answers` of the file at `path`, in a child killed after `timeout_s`;
    `progress` gets the child's progress.

    Raises SubmissionRejected as `read_answers`; CheckTimedOut past the limit; a child
    that died without an answer is `not_a_container`.
    """
    answers = _in_child(
        path,
        format=format,
        catalogue=catalogue,
        k=k,
        max_bytes=max_bytes,
        timeout_s=timeout_s,
        search=True,
        progress=progress,
    )
    assert answers is not None
    return answers


def validate_isolated(
    path: str, *, format: str, catalogue: Catalogue, max_bytes: int, timeout_s: float
) -> None:
    """Validate the file at `path` (no search), in a child killed after `timeout_s`;
    raises as `read_answers_isolated`."""
    _in_child(
        path,
        format=format,
        catalogue=catalogue,
        k=DEFAULT_K,
        max_bytes=max_bytes,
        timeout_s=timeout_s,
        search=False,
        progress=None,
    )


def _in_child(
    path: str,
    *,
    format: str,
    catalogue: Catalogue,
    k: int,
    max_bytes: int,
    timeout_s: float,
    search: bool,
    progress: StageProgress | None,
) -> RankedAnswers | None:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child,
        args=(sender, path, format, catalogue, k, max_bytes, search),
        name="recoghub-check-file",
        daemon=True,
    )
    child.start()
    sender.close()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if not receiver.poll(max(0.0, deadline - time.monotonic())):
                raise CheckTimedOut(limit_s=timeout_s)
            try:
                kind, value = receiver.recv()
            except EOFError:
                raise SubmissionRejected(
                    RejectKind.NOT_A_CONTAINER,
                    "the file could not be read (its reader stopped)",
                    expected="an HDF5 or .npz file with query_ids, query, reference_ids, reference",
                ) from None
            if kind != "progress":
                break
            if progress is not None:
                stage, done, total = value
                progress(str(stage), int(done), int(total))
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(5)
    if kind == "ok":
        answers: RankedAnswers | None = value
        return answers
    if kind == "too_large":
        raise SubmissionTooLarge(limit=int(value))
    reject_kind, problem, fields = value
    raise SubmissionRejected(
        RejectKind(reject_kind),
        problem,
        expected=fields["expected"],
        line=fields["line"],
        array=fields["array"],
        index=fields["index"],
        text=fields["text"],
    )

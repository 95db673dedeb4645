"""`read_answers` in a child process with a time limit, for the files a C library parses:
an `isc-descriptors` file is read by libhdf5 (or numpy's zip reader), which walks the
file's own structures; a damaged file that made it spin or crash would take a thread of
the hub with it. In a child, a crash is a refusal and a file that takes longer than the
limit is killed and refused (`timed_out`); nothing of it counts.

The child is spawned (not forked: the hub has threads and open connections) and sends
back the validated answers, or the refusal's fields (an exception with keyword-only
arguments does not pickle).
"""

import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

from gateway.offline.answers import Catalogue, RankedAnswers
from gateway.offline.errors import RejectKind, SubmissionRejected, SubmissionTooLarge
from gateway.offline.knn import DEFAULT_K
from gateway.offline.submission import read_answers


class CheckTimedOut(SubmissionRejected):
    def __init__(self, *, limit_s: float) -> None:
        super().__init__(
            RejectKind.TIMED_OUT,
            f"the file was not read within the hub's limit of {limit_s:g} s",
            expected=f"a file the hub reads within {limit_s:g} s "
            "(RECOGHUB_SUBMISSION_CHECK_TIMEOUT_S)",
        )


def _child(
    sender: Connection, path: str, format: str, catalogue: Catalogue, k: int, max_bytes: int
) -> None:
    try:
        with open(path, "rb") as stream:
            found: Any = read_answers(
                stream, format=format, catalogue=catalogue, k=k, max_bytes=max_bytes
            )
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
) -> RankedAnswers:
    """`read_answers` of the file at `path`, in a child killed after `timeout_s`.

    Raises SubmissionRejected as `read_answers`; CheckTimedOut past the limit; a child
    that died without an answer is `not_a_container`.
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child,
        args=(sender, path, format, catalogue, k, max_bytes),
        name="recoghub-check-file",
        daemon=True,
    )
    child.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            raise CheckTimedOut(limit_s=timeout_s)
        try:
            kind, value = receiver.recv()
        except EOFError:
            raise SubmissionRejected(
                RejectKind.NOT_A_CONTAINER,
                "the file could not be read (its reader stopped)",
                expected="an HDF5 or .npz file with query_ids, query, reference_ids, reference",
            ) from None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(5)
    if kind == "ok":
        answers: RankedAnswers = value
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

"""The lines of a text prediction file, read from a binary stream one bounded line at a
time: the file is never held whole, and a line longer than the format allows is refused
before it is read whole."""

from collections.abc import Iterator
from typing import BinaryIO

from gateway.offline.errors import RejectKind, SubmissionRejected, SubmissionTooLarge

_BOM = "\ufeff"


def text_lines(
    stream: BinaryIO, *, max_line_bytes: int, max_bytes: int | None = None
) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without its line end) for each line of `stream`.

    A UTF-8 byte order mark at the start is dropped (spreadsheets write one). Raises
    SubmissionRejected for a line that is not UTF-8 or over `max_line_bytes`, and
    SubmissionTooLarge once more than `max_bytes` were read.
    """
    read = 0
    number = 0
    while True:
        raw = stream.readline(max_line_bytes + 2)  # room for \r\n
        if not raw:
            return
        number += 1
        read += len(raw)
        if max_bytes is not None and read > max_bytes:
            raise SubmissionTooLarge(limit=max_bytes)
        body = raw.rstrip(b"\r\n")
        if len(body) > max_line_bytes:
            raise SubmissionRejected(
                RejectKind.LINE_TOO_LONG,
                f"the line is over {max_line_bytes} bytes",
                expected=f"lines of at most {max_line_bytes} bytes",
                line=number,
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SubmissionRejected(
                RejectKind.NOT_UTF8,
                f"byte {exc.start + 1} of the line is not UTF-8",
                expected="UTF-8 text",
                line=number,
                text=body[exc.start : exc.start + 8].hex(),
            ) from None
        if number == 1 and text.startswith(_BOM):
            text = text[1:]
        yield number, text

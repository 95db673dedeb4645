"""The lines of a text prediction file, read from a binary stream a block at a time: the
file is never held whole, a line longer than the format allows is refused before it is
read whole, and no more than the byte limit (+1) is ever read.

Lines come in blocks (a list of str per block of about `BLOCK_BYTES`) so that the
formats loop over a list, not a generator resumed per line: at 500,000 lines that is
the difference between seconds and a fraction of one.
"""

from collections.abc import Iterator
from typing import BinaryIO

from gateway.offline.errors import RejectKind, SubmissionRejected, SubmissionTooLarge

BLOCK_BYTES = 1 << 20
_BOM = "\ufeff"


def line_blocks(
    stream: BinaryIO, *, max_line_bytes: int, max_bytes: int | None = None
) -> Iterator[tuple[int, list[str]]]:
    """(1-based number of the block's first line, the block's lines without their line
    ends) for each block of `stream`.

    A UTF-8 byte order mark at the start is dropped (spreadsheets write one). Raises
    SubmissionRejected for a line that is not UTF-8 or over `max_line_bytes`, and
    SubmissionTooLarge once more than `max_bytes` were read.
    """
    read = 0
    number = 1  # of the next line
    rest = b""
    while True:
        size = BLOCK_BYTES if max_bytes is None else min(BLOCK_BYTES, max_bytes - read + 1)
        data = stream.read(size)
        read += len(data)
        if max_bytes is not None and read > max_bytes:
            raise SubmissionTooLarge(limit=max_bytes)
        if data:
            data = rest + data
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                if len(rest) > max_line_bytes + 1:  # + 1: a "\r" before the "\n"
                    raise _too_long(number, max_line_bytes)
                continue
            rest = data[cut + 1 :]
            data = data[:cut]
        elif rest:
            data, rest = rest, b""
        else:
            return
        lines = _decoded(data, first=number)
        if max(map(len, lines)) > max_line_bytes // 4:  # a UTF-8 char is at most 4 bytes
            bad = _long_line(lines, max_line_bytes)
            if bad is not None:
                raise _too_long(number + bad, max_line_bytes)
        if number == 1 and lines[0].startswith(_BOM):
            lines[0] = lines[0][1:]
        yield number, lines
        number += len(lines)
        if len(rest) > max_line_bytes + 1:
            raise _too_long(number, max_line_bytes)


def _decoded(data: bytes, *, first: int) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first + data.count(b"\n", 0, exc.start)
        start = data.rfind(b"\n", 0, exc.start) + 1
        raise SubmissionRejected(
            RejectKind.NOT_UTF8,
            f"byte {exc.start - start + 1} of the line is not UTF-8",
            expected="UTF-8 text",
            line=line,
            text=data[exc.start : exc.start + 8].hex(),
        ) from None
    lines = text.split("\n")
    if "\r" in text:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    return lines


def _long_line(lines: list[str], max_line_bytes: int) -> int | None:
    """The 0-based place of the first line over `max_line_bytes` bytes, or None (only
    called when some line has over a quarter of that many characters)."""
    for place, line in enumerate(lines):
        if len(line) > max_line_bytes // 4 and len(line.encode("utf-8")) > max_line_bytes:
            return place
    return None


def _too_long(line: int, max_line_bytes: int) -> SubmissionRejected:
    return SubmissionRejected(
        RejectKind.LINE_TOO_LONG,
        f"the line is over {max_line_bytes} bytes",
        expected=f"lines of at most {max_line_bytes} bytes",
        line=line,
    )

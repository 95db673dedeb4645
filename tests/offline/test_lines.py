"""Lines of a prediction file read in blocks: line numbers, refusals and the byte limit
hold across block boundaries."""

import io

import pytest

from gateway.offline import lines as lines_module
from gateway.offline.errors import RejectKind, SubmissionRejected, SubmissionTooLarge
from gateway.offline.lines import line_blocks


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lines_module, "BLOCK_BYTES", 7)  # lines straddle blocks


def numbered(raw: bytes, **limits: int) -> list[tuple[int, str]]:
    return [
        (first + offset, text)
        for first, block in line_blocks(io.BytesIO(raw), **{"max_line_bytes": 20, **limits})
        for offset, text in enumerate(block)
    ]


def test_lines_keep_their_numbers_across_blocks() -> None:
    raw = "\ufeffalpha\r\nbe\n\ngamma delta\nlast".encode()
    assert numbered(raw) == [(1, "alpha"), (2, "be"), (3, ""), (4, "gamma delta"), (5, "last")]
    assert numbered(b"") == []
    assert numbered(b"\n") == [(1, "")]


def test_bad_utf8_is_named_at_its_line_in_a_later_block() -> None:
    with pytest.raises(SubmissionRejected) as caught:
        numbered(b"one\ntwo\nthree\nfo\xc3ur\n")
    assert (caught.value.kind, caught.value.line) == (RejectKind.NOT_UTF8, 4)
    assert "byte 3 of the line" in str(caught.value)


@pytest.mark.parametrize("raw", [b"ok\n" + b"x" * 30 + b"\nok\n", b"ok\n" + b"x" * 30])
def test_a_long_line_is_refused_at_its_number(raw: bytes) -> None:
    with pytest.raises(SubmissionRejected) as caught:
        numbered(raw)
    assert (caught.value.kind, caught.value.line) == (RejectKind.LINE_TOO_LONG, 2)


def test_a_line_of_exactly_the_limit_passes_even_with_crlf() -> None:
    assert numbered(b"x" * 20 + b"\r\n" + "é".encode() * 10 + b"\n") == [
        (1, "x" * 20),
        (2, "é" * 10),
    ]
    with pytest.raises(SubmissionRejected):
        numbered("é".encode() * 11 + b"\n")  # 11 characters, 22 bytes


def test_no_more_than_the_limit_and_one_byte_is_read() -> None:
    stream = io.BytesIO(b"line\n" * 100)
    with pytest.raises(SubmissionTooLarge):
        for _ in line_blocks(stream, max_line_bytes=20, max_bytes=42):
            pass
    assert stream.tell() == 43

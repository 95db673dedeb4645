"""The result string of protocol v1: `tag1:0.95;tag2:0.32;...` (SPEC §2).

This is the only parser of recognizer answers; the hub, the sample recognizer and the
team CLI all import it.

Errors::

    ResultStringError (ValueError)   the body breaks the grammar -> outcome bad_format
     └── ResultTooLargeError         the body is over MAX_RESULT_BYTES -> outcome too_large
"""

import math
import re
from collections.abc import Iterable
from operator import itemgetter
from typing import NamedTuple

MAX_RESULT_BYTES = 64 * 1024
_SHOWN_CHARS = 40
# A finite decimal float in ASCII; float() alone would also take "nan", "1_0" and "١"
# (and so would \d without re.ASCII).
_SCORE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_score_matches = _SCORE.fullmatch
_isfinite = math.isfinite
_score_of = itemgetter(1)
_new_tag = tuple.__new__  # Tag(tag, score) without NamedTuple's Python-level __new__


def tag_key(tag: str) -> str:
    """The identity of a tag (SPEC §2): white space trimmed, Unicode case folded.

    Repeats, top-k, coverage and µAP all compare tags, true ones included, by this key;
    `Cat` and `cat ` are one tag. casefold() rather than lower(): `Straße` and `STRASSE`
    are one tag too.
    """
    return tag.strip().casefold()


def parse_score(text: str) -> float | None:
    """A score as the grammar writes it (a finite decimal float, white space trimmed), or
    None. Prediction files with a score column (SPEC §13) read their scores with it."""
    text = text.strip()
    if not _score_matches(text):
        return None
    score = float(text)
    return score if _isfinite(score) else None


class Tag(NamedTuple):
    """One ranked answer entry. A tuple, so that parsing thousands a second stays cheap."""

    tag: str
    score: float


class ResultStringError(ValueError):
    """A result string that breaks the grammar.

    `entry` is the 1-based index of the offending entry (None for the body as a whole),
    `text` the offending text (truncated) and `expected` what the grammar wanted.
    """

    def __init__(self, message: str, *, entry: int | None, text: str, expected: str) -> None:
        super().__init__(message)
        self.entry = entry
        self.text = text
        self.expected = expected


class ResultTooLargeError(ResultStringError):
    """A result body over MAX_RESULT_BYTES."""


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _entry_error(index: int, entry: str, problem: str, expected: str) -> ResultStringError:
    shown = _shown(entry.strip())
    return ResultStringError(
        f'entry {index} "{shown}" {problem}', entry=index, text=shown, expected=expected
    )


def parse_result(body: bytes | str) -> list[Tag]:
    """Parse a recognizer's answer into tags ranked best first.

    Ranking is by score descending; equal scores keep the team's order; a repeated tag
    (by `tag_key`) keeps its best-ranked entry only, spelled as that entry spells it. A
    body of only white space and `;` is an abstention and gives `[]`. Raises
    ResultTooLargeError over 64 KiB and ResultStringError for invalid UTF-8 or any entry
    that breaks the grammar.
    """
    if isinstance(body, str):
        size = len(body.encode("utf-8", "surrogatepass"))
        text = body
    else:
        size = len(body)
        text = ""
    if size > MAX_RESULT_BYTES:
        raise ResultTooLargeError(
            f"answer is {size} bytes, over the {MAX_RESULT_BYTES}-byte limit",
            entry=None,
            text="",
            expected=f"at most {MAX_RESULT_BYTES} bytes",
        )
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ResultStringError(
                f"answer is not valid UTF-8 (byte {exc.start})",
                entry=None,
                text=_shown(body[exc.start : exc.start + 8].hex()),
                expected="UTF-8 text",
            ) from None
    text = text.strip()
    # Nothing but white space and ';' is no answer, like an empty body. Such a text, once
    # stripped, starts with ';': the test keeps the copy off the common path.
    if not text or (text[0] == ";" and not text.replace(";", "").strip()):
        return []
    if text.endswith(";"):
        text = text[:-1]
    parsed: list[Tag] = []
    append = parsed.append
    index = 0
    for entry in text.split(";"):
        index += 1
        tag, colon, score_text = entry.rpartition(":")
        if colon:
            tag = tag.strip()
            score_text = score_text.strip()
            # What float() reads of ASCII text without '_', finite, is what the grammar
            # allows (its regular expression is for the entry found wrong, below).
            if tag and score_text.isascii() and "_" not in score_text:
                try:
                    score = float(score_text)
                except ValueError:
                    raise _bad_entry(index, entry) from None
                if _isfinite(score):
                    append(_new_tag(Tag, (tag, score)))
                    continue
        raise _bad_entry(index, entry)
    ranked = sorted(parsed, key=_score_of, reverse=True)
    # A repeat is rare; `rank` (stable, as sorted() is) then keeps each one's best-ranked
    # entry.
    if len({tag_key(tag) for tag, _ in ranked}) == len(ranked):
        return ranked
    return rank(ranked)


def _bad_entry(index: int, entry: str) -> ResultStringError:
    """What is wrong with an entry `parse_result` could not read."""
    tag, colon, score_text = entry.rpartition(":")
    if not colon:
        if not entry.strip():
            return ResultStringError(
                f"entry {index} is empty", entry=index, text="", expected='"tag:score"'
            )
        return _entry_error(index, entry, 'has no ":score"', '"tag:score"')
    score_text = score_text.strip()
    if not tag.strip():
        return _entry_error(index, entry, "has an empty tag", "a non-empty tag before the last ':'")
    if not _score_matches(score_text):
        return _entry_error(
            index, entry, f'has score "{_shown(score_text)}"', "a finite decimal score"
        )
    return _entry_error(index, entry, "has a score out of range", "a finite decimal score")


def rank(tags: Iterable[Tag]) -> list[Tag]:
    """Best first by score (stable on ties); a repeated tag (same `tag_key`) keeps its
    best-ranked entry, with that entry's own spelling."""
    seen: set[str] = set()
    ranked: list[Tag] = []
    # sorted() is stable with reverse=True too: equal scores keep the team's order.
    for item in sorted(tags, key=_score_of, reverse=True):
        key = tag_key(item.tag)
        if key not in seen:
            seen.add(key)
            ranked.append(item)
    return ranked


def format_result(tags: Iterable[Tag | tuple[str, float]]) -> str:
    """The result string for `tags`, in the given order; `parse_result` gives them back.

    Raises ValueError for a tag the grammar cannot carry (empty, containing ';', or
    with surrounding white space) or a score that is not finite.
    """
    parts: list[str] = []
    for item in tags:
        tag, score = (item.tag, item.score) if isinstance(item, Tag) else item
        if not tag or ";" in tag or tag != tag.strip():
            raise ValueError(f"tag {tag!r} cannot be written in a result string")
        if not _isfinite(score):
            raise ValueError(f"score {score!r} of tag {tag!r} is not finite")
        parts.append(f"{tag}:{float(score)!r}")
    return ";".join(parts)

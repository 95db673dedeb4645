"""Why a prediction file was refused (SPEC §13), as data.

A refused file counts for nothing; the route answers 422 with `detail` (one line that
names the place and what was expected) and `as_dict()`::

    SubmissionRejected (ValueError)     kind (RejectKind), line or array, text, expected
     └── SubmissionTooLarge             the file passed the byte limit while it was read

`line` is 1-based and counts every line of the file, header included; `array` names an
array of an `isc-descriptors` file (`query_ids`, `query`, `reference_ids`,
`reference`), with `index` the 0-based row when one row is at fault.
"""

from enum import StrEnum
from typing import Any

_SHOWN_CHARS = 60


class RejectKind(StrEnum):
    NOT_UTF8 = "not_utf8"
    LINE_TOO_LONG = "line_too_long"
    BAD_HEADER = "bad_header"
    COLUMN_COUNT = "column_count"
    UNKNOWN_ID = "unknown_id"
    REPEATED_ID = "repeated_id"
    BAD_SCORE = "bad_score"
    BAD_RESULT = "bad_result"  # a recoghub-tsv answer that breaks the §2 grammar
    UNKNOWN_LABEL = "unknown_label"
    INDEX_OUT_OF_RANGE = "index_out_of_range"
    TOO_MANY_PREDICTIONS = "too_many_predictions"
    TOO_MANY_LINES = "too_many_lines"
    NOT_A_CONTAINER = "not_a_container"  # neither HDF5 nor .npz
    MISSING_ARRAY = "missing_array"
    WRONG_DTYPE = "wrong_dtype"
    WRONG_SHAPE = "wrong_shape"
    NOT_FINITE = "not_finite"
    TOO_LARGE = "too_large"
    UNKNOWN_FORMAT = "unknown_format"
    TIMED_OUT = "timed_out"  # not read within the time limit (gateway.offline.isolated)


def shown(text: str) -> str:
    """`text` cut to what an error message quotes."""
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


class SubmissionRejected(ValueError):
    """A prediction file that cannot count, with the place and what was expected."""

    def __init__(
        self,
        kind: RejectKind,
        problem: str,
        *,
        expected: str,
        line: int | None = None,
        array: str | None = None,
        index: int | None = None,
        text: str = "",
    ) -> None:
        self.kind = kind
        self.line = line
        self.array = array
        self.index = index
        self.text = shown(text)
        self.expected = expected
        self.problem = problem
        super().__init__(f"{self.where}: {problem}; expected {expected}")

    @property
    def where(self) -> str:
        """`line 12`, `array query row 3`, `array query` or `file`."""
        if self.line is not None:
            return f"line {self.line}"
        if self.array is not None:
            row = f" row {self.index}" if self.index is not None else ""
            return f"array {self.array}{row}"
        return "file"

    def as_dict(self) -> dict[str, Any]:
        """The refusal as JSON fields (the 422's body besides `detail` and `code`)."""
        return {
            "kind": self.kind.value,
            "line": self.line,
            "array": self.array,
            "index": self.index,
            "text": self.text,
            "expected": self.expected,
        }


class SubmissionTooLarge(SubmissionRejected):
    """More bytes than the limit; raised while reading, before the file is read whole."""

    def __init__(self, *, limit: int) -> None:
        super().__init__(
            RejectKind.TOO_LARGE,
            f"the file is over {limit} bytes",
            expected=f"at most {limit} bytes",
        )

"""Malformed prediction files: each refused whole, before any image is counted, with the
line (or array) at fault and what was expected (SPEC §13)."""

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from gateway.offline.answers import Catalogue
from gateway.offline.errors import RejectKind, SubmissionRejected, SubmissionTooLarge
from gateway.offline.scoring import ImageResult
from gateway.offline.submission import evaluate
from tests.builders import descriptors_file, matching_file, text_file

CATALOGUE = Catalogue(
    image_ids=["a", "b", "c"], labels=["cat", "dog", "bird"], reference_ids=["r1", "r2"]
)
TRUTH = [["cat"], ["dog"], ["r1"]]


def vectors(rows: int, d: int = 4) -> Any:
    return np.ones((rows, d), dtype=np.float32)


def descriptors(**changes: Any) -> dict[str, Any]:
    arrays: dict[str, Any] = {
        "query_ids": ["a", "b"],
        "query": vectors(2),
        "reference_ids": ["r1", "r2"],
        "reference": vectors(2),
    }
    arrays.update(changes)
    return {name: value for name, value in arrays.items() if value is not None}


def not_finite() -> dict[str, Any]:
    query = vectors(2)
    query[1, 3] = np.nan
    return descriptors(query=query)


# (format, file, kind, line, array, index, words the message must hold)
CASES: list[tuple[str, Callable[[], io.BytesIO], RejectKind, int | None, str | None]] = [
    ("recoghub-tsv", lambda: io.BytesIO(b"a\tcat:1\nb\tdo\xffg:1\n"), RejectKind.NOT_UTF8, 2, None),
    ("recoghub-tsv", lambda: text_file(["a\tcat:1", "b cat:1"]), RejectKind.COLUMN_COUNT, 2, None),
    ("recoghub-tsv", lambda: text_file(["", "zz\tcat:1"]), RejectKind.UNKNOWN_ID, 2, None),
    (
        "recoghub-tsv",
        lambda: text_file(["a\t", "b\t", "a\tcat:1"]),
        RejectKind.REPEATED_ID,
        3,
        None,
    ),
    ("recoghub-tsv", lambda: text_file(["a\tcat:1;;dog:2"]), RejectKind.BAD_RESULT, 1, None),
    ("recoghub-tsv", lambda: text_file(["a\tcat:nan"]), RejectKind.BAD_RESULT, 1, None),
    ("recoghub-tsv", lambda: text_file(["a\t" + "x" * 70_000]), RejectKind.LINE_TOO_LONG, 1, None),
    ("ilsvrc", lambda: text_file(["cat", "1 2 3 1 2 3"]), RejectKind.TOO_MANY_PREDICTIONS, 2, None),
    ("ilsvrc", lambda: text_file(["cat", "", "cow"]), RejectKind.UNKNOWN_LABEL, 3, None),
    ("ilsvrc", lambda: text_file(["0"]), RejectKind.INDEX_OUT_OF_RANGE, 1, None),
    ("ilsvrc", lambda: text_file(["cat", "4"]), RejectKind.INDEX_OUT_OF_RANGE, 2, None),
    ("ilsvrc", lambda: text_file(["1", "2", "3", "", "1"]), RejectKind.TOO_MANY_LINES, 5, None),
    ("isc-matching", lambda: text_file(["query,reference,score"]), RejectKind.BAD_HEADER, 1, None),
    ("isc-matching", lambda: io.BytesIO(b""), RejectKind.BAD_HEADER, 1, None),
    (
        "isc-matching",
        lambda: matching_file([("a", "r1", "0.5,1")]),
        RejectKind.COLUMN_COUNT,
        2,
        None,
    ),
    (
        "isc-matching",
        lambda: matching_file([("a", "r1", 1), ("a", "r9", 1)]),
        RejectKind.UNKNOWN_ID,
        3,
        None,
    ),
    ("isc-matching", lambda: matching_file([("zz", "r1", 1)]), RejectKind.UNKNOWN_ID, 2, None),
    ("isc-matching", lambda: matching_file([("a", "r1", "inf")]), RejectKind.BAD_SCORE, 2, None),
    ("isc-matching", lambda: matching_file([("a", "r1", "")]), RejectKind.BAD_SCORE, 2, None),
    (
        "isc-matching",
        lambda: matching_file([("a", "r1", 1), ("b", "r1", 1), ("c", "r2", 1), ("a", "r1", 2)]),
        RejectKind.REPEATED_ID,
        5,
        None,
    ),
    ("isc-descriptors", lambda: text_file(["q"]), RejectKind.NOT_A_CONTAINER, None, None),
    (
        "isc-descriptors",
        lambda: descriptors_file(descriptors(reference=None)),
        RejectKind.MISSING_ARRAY,
        None,
        "reference",
    ),
    (
        "isc-descriptors",
        lambda: descriptors_file(descriptors(query=vectors(2).astype(np.float64))),
        RejectKind.WRONG_DTYPE,
        None,
        "query",
    ),
    (
        "isc-descriptors",
        lambda: descriptors_file(descriptors(query_ids=[1, 2])),
        RejectKind.WRONG_DTYPE,
        None,
        "query_ids",
    ),
    (
        "isc-descriptors",
        lambda: descriptors_file(descriptors(reference=vectors(2, d=5)), container="hdf5"),
        RejectKind.WRONG_SHAPE,
        None,
        "reference",
    ),
    (
        "isc-descriptors",
        lambda: descriptors_file(descriptors(query=vectors(3))),
        RejectKind.WRONG_SHAPE,
        None,
        "query",
    ),
    (
        "isc-descriptors",
        lambda: descriptors_file(
            descriptors(query=vectors(2, d=2049), reference=vectors(2, d=2049))
        ),
        RejectKind.WRONG_SHAPE,
        None,
        "query",
    ),
    (
        "isc-descriptors",
        lambda: descriptors_file(descriptors(query_ids=["a", "zz"])),
        RejectKind.UNKNOWN_ID,
        None,
        "query_ids",
    ),
    (
        "isc-descriptors",
        lambda: descriptors_file(descriptors(reference_ids=["r2", "r2"]), container="hdf5"),
        RejectKind.REPEATED_ID,
        None,
        "reference_ids",
    ),
    (
        "isc-descriptors",
        lambda: descriptors_file(not_finite()),
        RejectKind.NOT_FINITE,
        None,
        "query",
    ),
    ("sklearn", lambda: text_file([]), RejectKind.UNKNOWN_FORMAT, None, None),
]


@pytest.mark.parametrize(
    ("format", "make", "kind", "line", "array"),
    CASES,
    ids=[f"{i}-{case[0]}-{case[2].value}" for i, case in enumerate(CASES)],
)
def test_malformed_file_is_refused_with_its_line_and_not_counted(
    format: str,
    make: Callable[[], io.BytesIO],
    kind: RejectKind,
    line: int | None,
    array: str | None,
) -> None:
    counted: list[ImageResult] = []
    with pytest.raises(SubmissionRejected) as caught:
        evaluate(make(), format=format, catalogue=CATALOGUE, truth=TRUTH, on_results=counted.extend)
    error = caught.value
    assert error.kind is kind
    assert error.line == line
    assert error.array == array
    assert counted == []  # nothing of a refused file is scored
    where = f"line {line}" if line is not None else f"array {array}" if array else "file"
    assert str(error).startswith(where)
    assert "expected" in str(error) and error.expected


def test_at_least_ten_kinds_of_refusal_are_covered() -> None:
    assert len({case[2] for case in CASES}) >= 10


def test_refusal_names_the_row_of_an_array() -> None:
    with pytest.raises(SubmissionRejected) as caught:
        evaluate(
            descriptors_file(not_finite()),
            format="isc-descriptors",
            catalogue=CATALOGUE,
            truth=TRUTH,
        )
    assert caught.value.index == 1
    assert str(caught.value) == (
        "array query row 1: the vector holds NaN or infinity; expected finite float32 values"
    )


def test_an_error_on_the_last_line_refuses_the_whole_file() -> None:
    lines = [f"{image}\tcat:0.5" for image in ("a", "b", "c")] + ["c\tdog:1"]
    counted: list[ImageResult] = []
    with pytest.raises(SubmissionRejected) as caught:
        evaluate(
            text_file(lines),
            format="recoghub-tsv",
            catalogue=CATALOGUE,
            truth=TRUTH,
            on_results=counted.extend,
        )
    assert (caught.value.line, caught.value.kind, counted) == (4, RejectKind.REPEATED_ID, [])
    assert caught.value.as_dict()["text"] == "c"


@pytest.mark.parametrize("format", ["recoghub-tsv", "ilsvrc", "isc-matching", "isc-descriptors"])
def test_a_file_over_the_byte_limit_is_refused_before_it_is_read_whole(format: str) -> None:
    lines = ["query_id,reference_id,score"] if format == "isc-matching" else []
    body = text_file(lines + [""] * 5000)  # blank lines: valid in every text format
    if format == "isc-descriptors":
        body = descriptors_file(descriptors())
    size = len(body.getvalue())
    limit = size - 1 if format == "isc-descriptors" else size // 2
    with pytest.raises(SubmissionTooLarge) as caught:
        evaluate(body, format=format, catalogue=CATALOGUE, truth=TRUTH, max_bytes=limit)
    assert caught.value.kind is RejectKind.TOO_LARGE
    if format != "isc-descriptors":
        assert body.tell() <= limit + 1  # stopped at the line that passed the limit


def test_hdf5_ids_that_are_not_utf8_are_unknown_ids() -> None:
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_dataset("query_ids", data=np.array([b"a", b"\xff"], dtype="S1"))
        h5.create_dataset("query", data=vectors(2))
        h5.create_dataset("reference_ids", data=np.array([b"r1"]))
        h5.create_dataset("reference", data=vectors(1))
    buffer.seek(0)
    with pytest.raises(SubmissionRejected) as caught:
        evaluate(buffer, format="isc-descriptors", catalogue=CATALOGUE, truth=TRUTH)
    assert (caught.value.kind, caught.value.array, caught.value.index) == (
        RejectKind.UNKNOWN_ID,
        "query_ids",
        1,
    )


def test_a_corrupt_npz_member_is_not_a_container() -> None:
    ids = [f"q{i}" for i in range(1000)]
    catalogue = Catalogue(image_ids=ids, reference_ids=["r1", "r2"])
    raw = io.BytesIO()
    query = np.random.default_rng(1).normal(size=(1000, 4)).astype(np.float32)
    np.savez_compressed(raw, **descriptors(query_ids=ids, query=query))
    data = bytearray(raw.getvalue())
    data[len(data) * 3 // 5] ^= 0xFF  # inside the compressed query vectors
    with pytest.raises(SubmissionRejected) as caught:
        evaluate(
            io.BytesIO(bytes(data)),
            format="isc-descriptors",
            catalogue=catalogue,
            truth=[[] for _ in ids],
        )
    assert caught.value.kind is RejectKind.NOT_A_CONTAINER


def test_hdf5_variable_length_ids_are_refused() -> None:
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_dataset("query_ids", data=["a", "b"], dtype=h5py.string_dtype())
        h5.create_dataset("query", data=vectors(2))
        h5.create_dataset("reference_ids", data=np.array([b"r1", b"r2"]))
        h5.create_dataset("reference", data=vectors(2))
    buffer.seek(0)
    with pytest.raises(SubmissionRejected) as caught:
        evaluate(buffer, format="isc-descriptors", catalogue=CATALOGUE, truth=TRUTH)
    assert (caught.value.kind, caught.value.array) == (RejectKind.WRONG_DTYPE, "query_ids")
    assert "dtype='S'" in caught.value.expected


@pytest.mark.parametrize("container", ["npz", "hdf5"])
def test_damaged_descriptor_files_are_refused_not_crashed(container: str) -> None:
    ids = [f"q{i}" for i in range(20)]
    catalogue = Catalogue(image_ids=ids, reference_ids=["r1", "r2"])
    arrays = descriptors(
        query_ids=ids, query=np.linspace(0, 1, 80, dtype=np.float32).reshape(20, 4)
    )
    data = descriptors_file(arrays, container=container).getvalue()
    outcomes: set[str] = set()
    for position in range(0, len(data), 5):  # one flipped byte at a time
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        try:
            evaluate(
                io.BytesIO(bytes(damaged)),
                format="isc-descriptors",
                catalogue=catalogue,
                truth=[[] for _ in ids],
            )
            outcomes.add("scored")
        except SubmissionRejected as exc:
            outcomes.add(exc.kind.value)
    assert RejectKind.NOT_A_CONTAINER.value in outcomes


def test_matching_rows_past_the_limit_are_refused_at_the_first_one_over() -> None:
    from gateway.offline.matching import read_matching

    rows = [("a", "r1", 1), ("a", "r2", 1), ("b", "r1", 1)]
    with pytest.raises(SubmissionRejected) as caught:
        read_matching(matching_file(rows), catalogue=CATALOGUE, max_rows=2)
    assert (caught.value.kind, caught.value.line) == (RejectKind.TOO_MANY_LINES, 4)
    assert read_matching(matching_file(rows), catalogue=CATALOGUE, max_rows=3).images == 3

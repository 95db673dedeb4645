"""Any bytes given as a text prediction file are scored or refused with a
`SubmissionRejected`: never another exception."""

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.offline.answers import Catalogue
from gateway.offline.errors import SubmissionRejected
from gateway.offline.submission import evaluate
from tests.builders import text_file

CATALOGUE = Catalogue(
    image_ids=["a", "b", "c"], labels=["cat", "dog", "5"], reference_ids=["r1", "r2"]
)
TRUTH = [["cat"], ["r1"], []]
# Pieces the formats give meaning to, and a few bytes that are not UTF-8.
PIECES = st.sampled_from(
    [
        "a",
        "b",
        "c",
        "zz",
        "r1",
        "r2",
        "cat",
        "Dog",
        "5",
        "0",
        "-1",
        "7",
        "1e3",
        "nan",
        ":",
        ";",
        ",",
        "\t",
        " ",
        "\r",
        "\n",
        "0.5",
        "query_id,reference_id,score\n",
        "\ufeff",
        "é",
    ]
)
LINES = st.lists(st.lists(PIECES, max_size=8).map("".join), max_size=6)


@settings(max_examples=300)
@given(LINES, st.sampled_from(["recoghub-tsv", "ilsvrc", "isc-matching"]), st.binary(max_size=3))
def test_text_files_are_scored_or_refused(lines: list[str], file_format: str, tail: bytes) -> None:
    stream = text_file(lines)
    stream.seek(0, 2)
    stream.write(tail)
    stream.seek(0)
    try:
        scores = evaluate(stream, format=file_format, catalogue=CATALOGUE, truth=TRUTH)
    except SubmissionRejected as exc:
        assert exc.line is not None  # a text file is refused at a line
    else:
        assert scores["images"] == 3

"""The `isc-matching` format of SPEC §13: the Image Similarity Challenge's matching track.

A CSV file whose first line is the header `query_id,reference_id,score`, then one row
per predicted pair: a query (an image id of the phase), a reference id, and a score
(a finite decimal, as the §2 grammar writes scores; higher is more confident). A query
may have any number of rows; a (query, reference) pair only one. A query with no row is
`missed`. Ids carry no commas (they are the hub's opaque ids), so a row is split at its
commas; quoting is not needed and not read. A blank line is skipped.

Rows are kept as three numpy arrays (query, reference, score): 24 bytes a row.
"""

from array import array
from typing import BinaryIO

import numpy as np

from gateway.offline.answers import AnswersBuilder, Catalogue, RankedAnswers
from gateway.offline.errors import RejectKind, SubmissionRejected, shown
from gateway.offline.lines import line_blocks
from gateway.protocol.result_string import parse_score

HEADER = ("query_id", "reference_id", "score")
MATCHING_LINE_BYTES = 4096
# Rows beyond this many are refused: they bound the arrays a file can make the hub hold
# (24 bytes a row): 20 times the 500,000 rows SPEC §8 sizes a matching file at.
MAX_MATCHING_ROWS = 10_000_000


def read_matching(
    stream: BinaryIO,
    *,
    catalogue: Catalogue,
    max_bytes: int | None = None,
    max_rows: int = MAX_MATCHING_ROWS,
) -> RankedAnswers:
    """Validate and parse an `isc-matching` file. Raises SubmissionRejected at the first
    line that is wrong: a header other than `query_id,reference_id,score`, a row without
    3 columns, an unknown query or reference id, a score that is not a finite decimal, a
    pair given twice (named at its second line), more than `max_rows` rows."""
    queries = catalogue.image_index
    references = catalogue.reference_index
    built = AnswersBuilder(images=len(queries), tag_names=catalogue.reference_ids)
    lines_of_rows = array("q")  # the line of each row, to name a repeated pair
    header_seen = False
    for first, block in line_blocks(
        stream, max_line_bytes=MATCHING_LINE_BYTES, max_bytes=max_bytes
    ):
        if not header_seen:
            _check_header(block[0])
            header_seen = True
            block[0] = ""  # read: skipped below as a blank line
        # A block's rows go to the arrays at once: no call per row.
        found_queries: list[int] = []
        found_references: list[int] = []
        found_scores: list[float] = []
        for number, text in enumerate(block, first):
            parts = text.split(",")
            if len(parts) != 3:
                if not text.strip():
                    continue
                raise SubmissionRejected(
                    RejectKind.COLUMN_COUNT,
                    f"the row has {len(parts)} columns",
                    expected="3 columns: query_id,reference_id,score",
                    line=number,
                    text=text,
                )
            query_id, reference_id, score_text = parts
            # Ids are looked up as written first: strip() only when that fails.
            query = queries.get(query_id)
            if query is None:
                query = queries.get(query_id.strip())
                if query is None:
                    raise _unknown(number, "query_id", query_id, "an image_id of images.csv")
            reference = references.get(reference_id)
            if reference is None:
                reference = references.get(reference_id.strip())
                if reference is None:
                    raise _unknown(
                        number, "reference_id", reference_id, "a reference id of the phase"
                    )
            score = parse_score(score_text)
            if score is None:
                raise SubmissionRejected(
                    RejectKind.BAD_SCORE,
                    f'score "{shown(score_text.strip())}" is not a finite decimal',
                    expected="a finite decimal score such as 0.93 or 1e-3",
                    line=number,
                    text=score_text,
                )
            found_queries.append(query)
            found_references.append(reference)
            found_scores.append(score)
            lines_of_rows.append(number)
        if len(lines_of_rows) > max_rows:
            raise SubmissionRejected(
                RejectKind.TOO_MANY_LINES,
                f"the file has more than {max_rows} rows",
                expected=f"at most {max_rows} rows",
                line=lines_of_rows[max_rows],
            )
        built.add_arrays(
            np.array(found_queries, dtype=np.int64),
            np.array(found_references, dtype=np.int64),
            np.array(found_scores, dtype=np.float64),
        )
    if not header_seen:
        _check_header("")
    _refuse_repeated_pairs(built, catalogue=catalogue, lines=lines_of_rows)
    return built.finish()


def _check_header(text: str) -> None:
    if tuple(part.strip() for part in text.split(",")) != HEADER:
        raise SubmissionRejected(
            RejectKind.BAD_HEADER,
            f'the header is "{shown(text)}"' if text else "the file is empty",
            expected="the header query_id,reference_id,score",
            line=1,
            text=text,
        )


def _refuse_repeated_pairs(
    built: AnswersBuilder, *, catalogue: Catalogue, lines: "array[int]"
) -> None:
    """Refuse the file at the earliest line that repeats an earlier row's pair."""
    query, reference, _ = built.arrays()
    if len(query) < 2:
        return
    pair = query * max(1, len(catalogue.reference_ids)) + reference
    order = np.argsort(pair, kind="stable")  # equal pairs keep their file order
    ordered = pair[order]
    repeats = order[1:][ordered[1:] == ordered[:-1]]  # every later row of a pair
    if len(repeats) == 0:
        return
    row = int(repeats.min())
    query_id = catalogue.image_ids[int(query[row])]
    reference_id = catalogue.reference_ids[int(reference[row])]
    raise SubmissionRejected(
        RejectKind.REPEATED_ID,
        f'the pair "{shown(query_id)}","{shown(reference_id)}" was given on an earlier line',
        expected="each query_id,reference_id pair at most once",
        line=lines[row],
        text=f"{query_id},{reference_id}",
    )


def _unknown(line: int, column: str, value: str, expected: str) -> SubmissionRejected:
    return SubmissionRejected(
        RejectKind.UNKNOWN_ID,
        f'{column} "{shown(value.strip())}" is not known',
        expected=expected,
        line=line,
        text=value.strip(),
    )

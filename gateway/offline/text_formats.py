"""The two line-per-image formats of SPEC §13: `recoghub-tsv` and `ilsvrc`.

- `recoghub-tsv`: `image_id <TAB> result string`, any order, the result string as a
  recognizer would answer (§2, parsed by `gateway.protocol.result_string`, the one
  parser). A blank line is skipped; an empty result string is an abstention.
- `ilsvrc`: line i answers the i-th image of `images.csv`, with up to 5 predictions
  separated by white space, best first, each a label of `labels.txt` (compared by
  `tag_key`) or its 1-based index there (the ILSVRC devkit's form). A label is tried
  first, so a label that is itself a number wins over an index; a label with white space
  in it can only be given by index. A repeated prediction takes its first place only
  (§2). A blank line is an image with no prediction (an abstention); fewer lines than
  images leave the rest `missed`; blank lines past the last image are ignored.
  The file carries no scores: the i-th prediction gets score 1/i (the order is all that
  counts), and coverage and µAP are not computed for it.
"""

import re
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from gateway.offline.answers import AnswersBuilder, Catalogue, RankedAnswers
from gateway.offline.errors import RejectKind, SubmissionRejected, shown
from gateway.offline.lines import line_blocks
from gateway.protocol.result_string import (
    MAX_RESULT_BYTES,
    ResultStringError,
    parse_result,
    tag_key,
)

ILSVRC_PREDICTIONS = 5
# An image id, a tab and a result string at its largest.
TSV_LINE_BYTES = MAX_RESULT_BYTES + 1024
ILSVRC_LINE_BYTES = 4096
_INDEX = re.compile(r"[+-]?\d+", re.ASCII)


def read_tsv(
    stream: BinaryIO, *, catalogue: Catalogue, max_bytes: int | None = None
) -> RankedAnswers:
    """Validate and parse a `recoghub-tsv` file. Raises SubmissionRejected at the first
    line that is wrong (a tab missing, an unknown or repeated image id, a result string
    that breaks the grammar)."""
    index = catalogue.image_index
    names: list[str] = []
    codes: dict[str, int] = {}  # each tag spelling stored once
    built = AnswersBuilder(images=len(index), tag_names=names)
    for number, text in _numbered(
        line_blocks(stream, max_line_bytes=TSV_LINE_BYTES, max_bytes=max_bytes)
    ):
        if not text.strip():
            continue
        image_id, tab, body = text.partition("\t")
        if not tab:
            raise SubmissionRejected(
                RejectKind.COLUMN_COUNT,
                "the line has 1 column",
                expected="image_id<TAB>result string",
                line=number,
                text=text,
            )
        image_id = image_id.strip()
        image = index.get(image_id)
        if image is None:
            raise _unknown_image(number, image_id)
        if built.is_answered(image):
            raise _repeated_image(number, image_id)
        try:
            ranked = parse_result(body)
        except ResultStringError as exc:
            raise SubmissionRejected(
                RejectKind.BAD_RESULT,
                f"the result string is wrong: {exc}",
                expected=exc.expected,
                line=number,
                text=exc.text,
            ) from None
        built.answer(image)
        for tag, score in ranked:
            code = codes.get(tag)
            if code is None:
                code = codes[tag] = len(names)
                names.append(tag)
            built.add(image, code, score)
    return built.finish()


def read_ilsvrc(
    stream: BinaryIO, *, catalogue: Catalogue, max_bytes: int | None = None
) -> RankedAnswers:
    """Validate and parse an `ilsvrc` file. Raises SubmissionRejected at the first line
    that is wrong (more than 5 predictions, an unknown label, an index out of range,
    more lines than images)."""
    images = len(catalogue.image_ids)
    n_labels = len(catalogue.labels)
    # One lookup for both forms; a label wins over an index that is spelled the same.
    lookup = {str(i): i - 1 for i in range(1, n_labels + 1)}
    lookup.update(catalogue.label_index)
    built = AnswersBuilder(images=images, tag_names=catalogue.labels, has_scores=False)
    for first, lines in line_blocks(stream, max_line_bytes=ILSVRC_LINE_BYTES, max_bytes=max_bytes):
        answered: list[int] = []
        entries: list[int] = []  # image, label pairs, flattened
        places: list[int] = []
        for number, text in enumerate(lines, first):
            tokens = text.split()
            if number > images:
                if tokens:
                    raise SubmissionRejected(
                        RejectKind.TOO_MANY_LINES,
                        f"the phase has {images} images, this is line {number}",
                        expected=f"at most {images} lines, one per image of images.csv",
                        line=number,
                        text=text,
                    )
                continue
            if len(tokens) > ILSVRC_PREDICTIONS:
                raise SubmissionRejected(
                    RejectKind.TOO_MANY_PREDICTIONS,
                    f"the line has {len(tokens)} predictions",
                    expected=f"at most {ILSVRC_PREDICTIONS} labels or label indices",
                    line=number,
                    text=text,
                )
            image = number - 1
            answered.append(image)
            placed: list[int] = []
            for token in tokens:
                label = lookup.get(token)
                if label is None:
                    label = lookup.get(tag_key(token))
                    if label is None:
                        label = _label_of_index(token, n_labels=n_labels, line=number)
                if label not in placed:  # a repeat takes its first place only
                    placed.append(label)
                    entries += (image, label)
                    places.append(len(placed))
        pairs = np.array(entries, dtype=np.int64).reshape(-1, 2)
        built.add_arrays(pairs[:, 0], pairs[:, 1], 1.0 / np.array(places, dtype=np.float64))
        built.mark_answered(np.array(answered, dtype=np.int64))
    return built.finish()


def _numbered(blocks: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, str]]:
    for first, lines in blocks:
        yield from enumerate(lines, first)


def _label_of_index(token: str, *, n_labels: int, line: int) -> int:
    if not _INDEX.fullmatch(token):
        raise SubmissionRejected(
            RejectKind.UNKNOWN_LABEL,
            f'"{shown(token)}" is not a label of labels.txt',
            expected="a label of labels.txt or its 1-based index",
            line=line,
            text=token,
        )
    value = int(token)
    if not 1 <= value <= n_labels:
        raise SubmissionRejected(
            RejectKind.INDEX_OUT_OF_RANGE,
            f"label index {shown(token)} is out of range",
            expected=f"an index from 1 to {n_labels} (labels.txt)",
            line=line,
            text=token,
        )
    return value - 1


def _unknown_image(line: int, image_id: str) -> SubmissionRejected:
    return SubmissionRejected(
        RejectKind.UNKNOWN_ID,
        f'image id "{shown(image_id)}" is not one of the phase\'s images',
        expected="an image_id of images.csv",
        line=line,
        text=image_id,
    )


def _repeated_image(line: int, image_id: str) -> SubmissionRejected:
    return SubmissionRejected(
        RejectKind.REPEATED_ID,
        f'image id "{shown(image_id)}" was answered on an earlier line',
        expected="each image_id at most once",
        line=line,
        text=image_id,
    )

"""A prediction file's scores, by the scorer of live runs (SPEC §6, §13).

Each image of the phase becomes what a run's work item records — its image id as the
key, an outcome (`ok`, or `missed` when the file left it out), its tags ranked best
first and the place of the first true one — and the figures are those a `ServiceScorer`
gives the same answers (`gateway.runs.finish.service_scores` scores a run service so),
computed by its array path (`gateway.scoring.arrays`: the same definitions, no Python
step per tag; tests/scoring/test_arrays.py holds the two equal). A file is thus a run
whose every answer came in at once: no latency, no throughput.

The results are handed to `on_results` a page at a time, so the caller can store them
(as a run's results) while memory stays one page big.
"""

from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from gateway.errors import Outcome
from gateway.offline.answers import Ints, RankedAnswers
from gateway.protocol.result_string import tag_key
from gateway.scoring.arrays import score_arrays
from gateway.scoring.metrics import truth_set

RESULT_PAGE = 1000
_OK = Outcome.OK.value
_MISSED = Outcome.MISSED.value


class ImageResult(NamedTuple):
    """One image's result, in the fields of a run's result (`key`, `outcome`, `tags`,
    `true_rank`); `key` is the phase's opaque image id."""

    key: str
    outcome: str
    tags: list[tuple[str, float]]
    true_rank: int | None


Progress = Callable[[int, int], None]


def score_answers(
    answers: RankedAnswers,
    *,
    image_ids: Sequence[str],
    truth: Sequence[Sequence[str]],
    on_results: Callable[[list[ImageResult]], None] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The leaderboard fields of `ServiceScorer.result()` for a file's answers; `truth[i]`
    is the true tags of `image_ids[i]`. Coverage and µAP are None when the format carries
    no scores (`ilsvrc`). `on_results` gets every image's result, in `image_ids` order,
    a page at a time; `progress(done, total)` is called after each page. Raises ValueError
    when the answers, the ids and the truth are not of one phase (lengths differ)."""
    total = len(image_ids)
    if not answers.images == total == len(truth):
        raise ValueError(
            f"{answers.images} answered images, {total} image ids and {len(truth)} true "
            "sets: not one phase"
        )
    keys, truth_images, truth_keys = _tag_numbers(answers, truth)
    scored = score_arrays(
        starts=answers.starts,
        keys=keys,
        scores=answers.scores,
        answered=answers.answered,
        truth_images=truth_images,
        truth_keys=truth_keys,
    )
    done = 0
    for page in _pages(answers, image_ids=image_ids, true_ranks=scored.true_ranks):
        done += len(page)
        if on_results is not None:
            on_results(page)
        if progress is not None:
            progress(done, total)
    scores = dict(scored.result)
    if not answers.has_scores:
        scores.update(coverage_at_95=None, coverage_at_99=None, micro_ap=None)
    return scores


def _tag_numbers(answers: RankedAnswers, truth: Sequence[Sequence[str]]) -> tuple[Ints, Ints, Ints]:
    """Numbers for the tags of the entries and of the true sets, equal exactly when their
    `tag_key`s are: (a number per entry, the image and number of each true pair).

    The true tags are numbered first (a small dict). A tag used in the file is keyed once,
    not once per entry, and its key is kept only when the keys of the used tags are not
    all distinct (found from their hashes): so a file naming 500,000 reference ids does
    not build a dict of 500,000 keys when, as ids do, they differ.
    """
    numbers: dict[str, int] = {}
    truth_images: array[int] = array("q")
    truth_keys: array[int] = array("q")
    for image, tags in enumerate(truth):
        for key in truth_set(tags):
            truth_images.append(image)
            truth_keys.append(numbers.setdefault(key, len(numbers)))
    names = answers.tag_names
    used = np.unique(answers.tags)
    hashes: array[int] = array("q")
    true_numbers: array[int] = array("q")
    for code in used.tolist():
        key = tag_key(names[code])
        hashes.append(hash(key))
        true_numbers.append(numbers.get(key, -1))
    if len(np.unique(np.frombuffer(hashes, dtype=np.int64))) == len(hashes):
        # Distinct keys: a tag that is not true is its own code, past the true numbers.
        true_number = np.frombuffer(true_numbers, dtype=np.int64)
        numbered = np.where(true_number >= 0, true_number, used + len(numbers))
    else:  # some keys may be equal: number them all by key
        numbered = np.array(
            [numbers.setdefault(tag_key(names[code]), len(numbers)) for code in used.tolist()],
            dtype=np.int64,
        )
    return (
        numbered[np.searchsorted(used, answers.tags)],
        np.frombuffer(truth_images, dtype=np.int64),
        np.frombuffer(truth_keys, dtype=np.int64),
    )


def _pages(
    answers: RankedAnswers, *, image_ids: Sequence[str], true_ranks: Ints
) -> Iterator[list[ImageResult]]:
    names = answers.tag_names
    total = len(image_ids)
    for first in range(0, total, RESULT_PAGE):
        last = min(first + RESULT_PAGE, total)
        # One page of the arrays as Python values: flat memory, no per-entry numpy calls.
        begin, end = int(answers.starts[first]), int(answers.starts[last])
        starts = (answers.starts[first : last + 1] - begin).tolist()
        tags = answers.tags[begin:end].tolist()
        scores = answers.scores[begin:end].tolist()
        answered = answers.answered[first:last].tolist()
        ranks = true_ranks[first:last].tolist()
        page: list[ImageResult] = []
        for offset in range(last - first):
            key = image_ids[first + offset]
            if not answered[offset]:
                page.append(ImageResult(key, _MISSED, [], None))
                continue
            a, b = starts[offset], starts[offset + 1]
            ranked = [(names[t], s) for t, s in zip(tags[a:b], scores[a:b], strict=True)]
            page.append(ImageResult(key, _OK, ranked, ranks[offset] or None))
        yield page

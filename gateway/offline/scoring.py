"""A prediction file's scores, by the scorer of live runs (SPEC §6, §13).

Each image of the phase becomes what a run's work item records — its image id as the
key, an outcome (`ok`, or `missed` when the file left it out), its tags ranked best
first and the place of the first true one (`metrics.true_rank`) — and is added to a
`ServiceScorer`, the very scorer that scores a run service when it ends
(`gateway.runs.finish.service_scores`). A file is thus a run whose every answer came in
at once: no latency, no throughput.

The results are handed to `on_results` a page at a time, so the caller can store them
(as a run's results) while memory stays one page big.
"""

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from gateway.errors import Outcome
from gateway.offline.answers import RankedAnswers
from gateway.scoring.metrics import ServiceScorer, true_rank

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
    scorer = ServiceScorer()
    for page in _pages(answers, image_ids=image_ids, truth=truth):
        for result, true in page:
            scorer.add(outcome=result.outcome, tags=result.tags, truth=true, latency_ms=None)
        if on_results is not None:
            on_results([result for result, _ in page])
        if progress is not None:
            progress(scorer.images, total)
    scores = scorer.result(elapsed_s=None)
    if not answers.has_scores:
        scores.update(coverage_at_95=None, coverage_at_99=None, micro_ap=None)
    return scores


def _pages(
    answers: RankedAnswers, *, image_ids: Sequence[str], truth: Sequence[Sequence[str]]
) -> Iterator[list[tuple[ImageResult, Sequence[str]]]]:
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
        page: list[tuple[ImageResult, Sequence[str]]] = []
        for offset in range(last - first):
            image = first + offset
            true = truth[image]
            if not answered[offset]:
                page.append((ImageResult(image_ids[image], _MISSED, [], None), true))
                continue
            a, b = starts[offset], starts[offset + 1]
            ranked = [(names[t], s) for t, s in zip(tags[a:b], scores[a:b], strict=True)]
            rank = true_rank([tag for tag, _ in ranked], true)
            page.append((ImageResult(image_ids[image], _OK, ranked, rank), true))
        yield page

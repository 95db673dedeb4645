"""The metrics of SPEC §6, as pure functions and as a streaming scorer for one service.

An image's answer is its tags ranked best first (SPEC §2). Places are counted by the
one ranking of `gateway.scoring.ranking`: tags are one tag when their `tag_key` (white
space trimmed, Unicode case folded) is equal, in the answer and in the true set alike; a
repeat within one answer counts at its best-ranked place only, even in a list that was
not ranked by `rank` (results recorded before that rule). An answer that is not `ok`
counts as wrong / not recognized; an `ok` answer with no tags is an abstention.

- top-k: an image with a non-empty true set is correct if one of its first k distinct
  tags is true.
- coverage at precision P: the top-1 (score, correct) of every answered image with a true
  set, sorted by score descending, incorrect before correct on equal scores; the largest
  m/N (N = images with a true set) whose precision correct/m >= P, 0 if none.
- µAP: every (image, tag, score) returned, sorted the same way; Σ (r_i − r_{i−1}) · p_i
  with p_i = TP_i / i and r_i = TP_i / N_gt (N_gt = all true pairs, predicted or not).
  A tag that repeats within one answer (`Dog`, `dog `) is one pair, its best-ranked
  entry; so TP never exceeds N_gt.
- latency: p50, p90, p99 (nearest-rank), max and mean of the `ok` answers.

`ServiceScorer` keeps each per-image figure as a float in sorted `array('d')` runs (about
56 bytes an image for five tags) and merges the runs lazily, so that a run of 100,000
images scores in nearly flat memory (SPEC §8).
"""

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from gateway.errors import OUTCOMES, Outcome
from gateway.scoring.pools import SortedPool, merge_flags
from gateway.scoring.ranking import distinct, distinct_lists, place_of_truth, tag_key
from gateway.scoring.ranking import true_rank as true_rank  # re-exported for its callers
from gateway.scoring.ranking import truth_set as truth_set

PERCENTILES: tuple[tuple[str, int], ...] = (("p50", 50), ("p90", 90), ("p99", 99))
LATENCY_FIELDS: tuple[str, ...] = ("p50", "p90", "p99", "max", "mean")
# How many floats are sorted at once into one run; bounds the transient Python objects.
DEFAULT_SORT_RUN_SIZE = 32_768
# The precisions of the leaderboard's coverage fields, coverage_at_95 and coverage_at_99.
COVERAGE_TARGETS = (Fraction(95, 100), Fraction(99, 100))
_OK = Outcome.OK.value
# One image as `ServiceScorer.add_many` takes it: (outcome, tags, truth, latency_ms).
Scored = tuple[str, Sequence[tuple[str, float]] | None, Sequence[str], float | None]


@dataclass(frozen=True, slots=True)
class Counts:
    """The counts of a `ServiceScorer` that `LiveTally` keeps too."""

    images: int
    outcomes: dict[str, int]
    with_truth: int
    true_pairs: int
    top1: int
    top5: int


# The form tags are compared in; the one definition is the protocol's.
normalize_tag = tag_key


def top_k_correct(tags: Sequence[str], truth: Iterable[str], *, k: int) -> bool | None:
    """Whether one of the first `k` of `tags` (ranked best first) is in `truth`.

    None when the true set is empty: such an image is left out of top-k. A repeated tag
    takes one place. Pass `tags=[]` for an answer that was not `ok`. Raises ValueError if
    k < 1.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    true = truth_set(truth)
    if not true:
        return None
    rank = place_of_truth((key for key, _ in distinct((t, 0.0) for t in tags)), true)
    return rank is not None and rank <= k


def coverage_at_precision(
    answers: Iterable[tuple[float, bool]], *, n_images: int, precision: float | Fraction
) -> float | None:
    """Coverage at precision P from the top-1 `(score, correct)` of each answered image.

    `answers` holds only images with a true set and a non-empty `ok` answer; `n_images` is
    N, every image with a true set (abstentions and failed requests included). The
    precision is compared exactly, as the decimal it is written as (0.95 means 19/20).
    None when N is 0. Raises ValueError for P outside [0, 1], N < 0, more answers than
    N, or a score that is not finite.
    """
    target = _exact_fraction(precision)
    pairs = sorted(answers, key=_rank_key)
    if n_images < 0 or len(pairs) > n_images:
        raise ValueError(f"{len(pairs)} answers for {n_images} images with a true set")
    flags = iter(correct for _, correct in pairs)
    return _coverages(flags, n_images=n_images, targets=(target,))[0]


def micro_average_precision(pairs: Iterable[tuple[float, bool]], *, n_true: int) -> float | None:
    """µAP of every `(score, correct)` pair returned, against `n_true` true pairs (N_gt).

    None when N_gt is 0. Raises ValueError for a score that is not finite or when more
    pairs are correct than there are true pairs.
    """
    ranked = sorted(pairs, key=_rank_key)
    return _micro_ap(iter(correct for _, correct in ranked), n_true=n_true)


def percentile(values: Iterable[float], percent: float) -> float:
    """The nearest-rank percentile: the ceil(P/100 · n)-th smallest value (the smallest for P=0).

    Raises ValueError when `values` is empty or P is outside [0, 100].
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    return ordered[_nearest_rank(len(ordered), percent) - 1]


def latency_summary(latencies_ms: Iterable[float]) -> dict[str, float | None]:
    """p50, p90, p99 (nearest-rank), max and mean; every field None for no values."""
    descending = sorted(latencies_ms, reverse=True)
    return _latency_summary(iter(descending), n=len(descending), total=math.fsum(descending))


class ServiceScorer:
    """Every SPEC §6 figure of one service in one run, fed one image at a time.

    Memory: a float per returned tag (µAP), per answered image with a true set (coverage)
    and per `ok` latency, kept in sorted `array('d')` runs of `sort_run_size` values;
    `result()` merges them lazily and leaves the state as it was, so it may be called
    again as more images arrive.
    """

    def __init__(self, *, sort_run_size: int = DEFAULT_SORT_RUN_SIZE) -> None:
        self._outcomes = dict.fromkeys(OUTCOMES, 0)
        self._images = 0
        self._with_truth = 0  # N of top-k and coverage
        self._true_pairs = 0  # N_gt of µAP
        self._top1 = 0
        self._top5 = 0
        self._top1_right = SortedPool(sort_run_size)
        self._top1_wrong = SortedPool(sort_run_size)
        self._pairs_right = SortedPool(sort_run_size)
        self._pairs_wrong = SortedPool(sort_run_size)
        self._latencies = SortedPool(sort_run_size)

    @property
    def images(self) -> int:
        """How many images were added."""
        return self._images

    def add(
        self,
        *,
        outcome: str,
        tags: Sequence[tuple[str, float]],
        truth: Sequence[str],
        latency_ms: float | None,
    ) -> None:
        """Count one image: its request's outcome, its answer's `(tag, score)` ranked best
        first, its true tags, and the latency of its answer.

        The tags and latency of an answer that is not `ok` are ignored. Raises ValueError
        for an unknown outcome or a score or latency that is not finite; nothing is
        counted then.
        """
        self.add_many(((outcome, tags, truth, latency_ms),))

    def add_many(self, images: Iterable[Scored]) -> None:
        """`add` of each `(outcome, tags, truth, latency_ms)` in turn (tags None: none), in
        one loop: a worker scores its batches so. On ValueError the images before the
        wrong one are counted, that one and those after it are not."""
        outcomes = self._outcomes
        isfinite = math.isfinite
        # Gathered here and added once, when the loop ends (or raises).
        latencies: list[float] = []
        right: list[float] = []
        wrong: list[float] = []
        top1_right: list[float] = []
        top1_wrong: list[float] = []
        counted = with_truth = true_pairs = top1 = top5 = 0
        try:
            for outcome, tags, truth, latency_ms in images:
                # What may raise comes before anything of the image is counted.
                if outcome not in outcomes:
                    raise ValueError(f"unknown outcome {outcome!r}; expected one of {OUTCOMES}")
                ok = outcome == _OK
                keys: list[str] = []
                scores: list[float] = []
                if ok:
                    if tags:
                        # Each distinct tag at its best-ranked place, with its score.
                        keys, scores = distinct_lists(tags)
                        for _, score in tags:
                            if not isfinite(score):
                                raise _not_finite(score, "score")
                    if latency_ms is not None and not isfinite(latency_ms):
                        raise _not_finite(latency_ms, "latency_ms")
                true = truth_set(truth)

                counted += 1
                outcomes[outcome] += 1
                true_pairs += len(true)
                if ok and latency_ms is not None:
                    latencies.append(latency_ms)
                if not true:
                    wrong.extend(scores)  # µAP pairs; no top-k
                    continue
                with_truth += 1
                if not keys:
                    continue
                # The µAP pairs, and the place of the first true tag for top-k.
                rank = 0
                for place, key in enumerate(keys, start=1):
                    if key in true:
                        right.append(scores[place - 1])
                        if not rank:
                            rank = place
                    else:
                        wrong.append(scores[place - 1])
                if rank == 1:
                    top1 += 1
                    top1_right.append(scores[0])
                else:
                    top1_wrong.append(scores[0])
                if 0 < rank <= 5:
                    top5 += 1
        finally:
            self._images += counted
            self._with_truth += with_truth
            self._true_pairs += true_pairs
            self._top1 += top1
            self._top5 += top5
            for pool, values in zip(
                self._pools(), (top1_right, top1_wrong, right, wrong, latencies), strict=True
            ):
                pool.extend(values)

    def merge(self, other: "ServiceScorer") -> None:
        """Count every image `other` counted (a batch scored apart, once it is recorded)."""
        for name, count in other._outcomes.items():
            self._outcomes[name] += count
        self._images += other._images
        self._with_truth += other._with_truth
        self._true_pairs += other._true_pairs
        self._top1 += other._top1
        self._top5 += other._top5
        for pool, theirs in zip(self._pools(), other._pools(), strict=True):
            pool.merge(theirs)

    def counts(self) -> Counts:
        """What was counted so far, as `gateway.scoring.live.LiveTally` counts it too."""
        return Counts(
            images=self._images,
            outcomes=dict(self._outcomes),
            with_truth=self._with_truth,
            true_pairs=self._true_pairs,
            top1=self._top1,
            top5=self._top5,
        )

    def _pools(self) -> tuple["SortedPool", ...]:
        return (
            self._top1_right,
            self._top1_wrong,
            self._pairs_right,
            self._pairs_wrong,
            self._latencies,
        )

    def result(self, *, elapsed_s: float | None) -> dict[str, Any]:
        """The leaderboard fields: images, top1, top5, coverage_at_95, coverage_at_99,
        micro_ap, latency_ms {p50, p90, p99, max, mean}, outcomes (all six, counts) and
        images_per_s.

        A metric that does not apply is None: top-k and coverage with no image that has a
        true set, micro_ap with no true pair, latency with no `ok` answer, images_per_s
        when `elapsed_s` is None or 0. Raises ValueError for a negative `elapsed_s`.
        """
        if elapsed_s is not None and elapsed_s < 0:
            raise ValueError(f"elapsed_s must not be negative, got {elapsed_s}")
        n = self._with_truth
        top1_flags = merge_flags(self._top1_right.descending(), self._top1_wrong.descending())
        at_95, at_99 = _coverages(top1_flags, n_images=n, targets=COVERAGE_TARGETS)
        pair_flags = merge_flags(self._pairs_right.descending(), self._pairs_wrong.descending())
        latencies = self._latencies
        return {
            "images": self._images,
            "top1": self._top1 / n if n else None,
            "top5": self._top5 / n if n else None,
            "coverage_at_95": at_95,
            "coverage_at_99": at_99,
            "micro_ap": _micro_ap(pair_flags, n_true=self._true_pairs),
            "latency_ms": _latency_summary(
                latencies.descending(), n=len(latencies), total=math.fsum(latencies.values())
            ),
            "outcomes": dict(self._outcomes),
            "images_per_s": self._images / elapsed_s if elapsed_s else None,
        }


def coverages_of_ranked(
    flags: Iterable[bool], *, n_images: int, targets: Sequence[Fraction]
) -> list[float | None]:
    """Coverage at each precision target from the top-1 correctness flags already in
    ranked order (score descending, incorrect before correct on ties): the definition
    `ServiceScorer` and `gateway.scoring.arrays` both use."""
    return _coverages(iter(flags), n_images=n_images, targets=targets)


def micro_ap_of_ranked(flags: Iterable[bool], *, n_true: int) -> float | None:
    """µAP from the pairs' correctness flags already in ranked order: the definition
    `ServiceScorer` and `gateway.scoring.arrays` both use. Raises ValueError as
    `micro_average_precision`."""
    return _micro_ap(iter(flags), n_true=n_true)


def _coverages(
    flags: Iterator[bool], *, n_images: int, targets: Sequence[Fraction]
) -> list[float | None]:
    """Coverage at each precision target, in one pass over the ranked top-1 flags."""
    if n_images == 0:
        return [None for _ in targets]
    ratios = [(t.numerator, t.denominator) for t in targets]
    best = [0 for _ in targets]
    correct = m = 0
    for flag in flags:
        m += 1
        correct += flag
        for i, (num, den) in enumerate(ratios):
            if correct * den >= num * m:  # correct / m >= P, in integers
                best[i] = m
    return [b / n_images for b in best]


def _micro_ap(flags: Iterator[bool], *, n_true: int) -> float | None:
    if n_true < 0:
        raise ValueError(f"n_true must not be negative, got {n_true}")
    total = 0.0
    tp = 0
    for i, flag in enumerate(flags, start=1):
        if flag:
            tp += 1
            total += tp / i  # r_i - r_{i-1} = 1 / N_gt at a true pair, 0 elsewhere
    if tp > n_true:
        raise ValueError(f"{tp} correct pairs but only {n_true} true pairs")
    return total / n_true if n_true else None


def _latency_summary(
    descending: Iterator[float], *, n: int, total: float
) -> dict[str, float | None]:
    if n == 0:
        return dict.fromkeys(LATENCY_FIELDS, None)
    # The k-th smallest of n values is the (n - k)-th (0-based) of the descending stream.
    wanted = [(n - _nearest_rank(n, percent), field) for field, percent in PERCENTILES]
    deepest = max(index for index, _ in wanted)
    indices = {index for index, _ in wanted} | {0}
    picked: dict[int, float] = {}
    for index, value in enumerate(descending):
        if index in indices:
            picked[index] = value
        if index == deepest:
            break
    summary = {field: picked[index] for index, field in wanted}
    return {**summary, "max": picked[0], "mean": total / n}


def nearest_rank(n: int, percent: float) -> int:
    """The 1-based place of the nearest-rank P-th percentile among `n` sorted values.

    Raises ValueError for P outside [0, 100].
    """
    return _nearest_rank(n, percent)


def _nearest_rank(n: int, percent: float) -> int:
    if type(percent) is int and 0 <= percent <= 100:  # SPEC's percentiles: exact, no Fraction
        return max(1, -(-percent * n // 100))
    try:
        exact = Fraction(str(percent))  # the decimal as written: ceil(0.07 * 100) is 7
    except ValueError:
        exact = Fraction(-1)
    if not 0 <= exact <= 100:
        raise ValueError(f"percentile must be within [0, 100], got {percent}")
    return max(1, math.ceil(exact * n / 100))


def _exact_fraction(precision: float | Fraction) -> Fraction:
    try:
        exact = Fraction(str(precision))
    except ValueError:
        exact = Fraction(-1)
    if not 0 <= exact <= 1:
        raise ValueError(f"precision must be within [0, 1], got {precision}")
    return exact


def _rank_key(pair: tuple[float, bool]) -> tuple[float, bool]:
    score, correct = pair
    _check_finite(score, "score")
    return (-score, correct)


def _check_finite(value: float, what: str) -> None:
    if not math.isfinite(value):
        raise _not_finite(value, what)


def _not_finite(value: float, what: str) -> ValueError:
    return ValueError(f"{what} must be a finite number, got {value!r}")

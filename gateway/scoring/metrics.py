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

import heapq
import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from itertools import chain
from typing import Any

from gateway.errors import OUTCOMES, Outcome
from gateway.scoring.ranking import distinct, place_of_truth, tag_key
from gateway.scoring.ranking import true_rank as true_rank  # re-exported for its callers
from gateway.scoring.ranking import truth_set as truth_set

PERCENTILES: tuple[tuple[str, int], ...] = (("p50", 50), ("p90", 90), ("p99", 99))
LATENCY_FIELDS: tuple[str, ...] = ("p50", "p90", "p99", "max", "mean")
# How many floats are sorted at once into one run; bounds the transient Python objects.
DEFAULT_SORT_RUN_SIZE = 32_768
# The precisions of the leaderboard's coverage fields, coverage_at_95 and coverage_at_99.
COVERAGE_TARGETS = (Fraction(95, 100), Fraction(99, 100))


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
        self._top1_right = _SortedPool(sort_run_size)
        self._top1_wrong = _SortedPool(sort_run_size)
        self._pairs_right = _SortedPool(sort_run_size)
        self._pairs_wrong = _SortedPool(sort_run_size)
        self._latencies = _SortedPool(sort_run_size)

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
        if outcome not in self._outcomes:
            raise ValueError(f"unknown outcome {outcome!r}; expected one of {OUTCOMES}")
        ok = outcome == Outcome.OK
        ranked = tags if ok else ()
        for _, score in ranked:
            _check_finite(score, "score")
        if ok and latency_ms is not None:
            _check_finite(latency_ms, "latency_ms")

        true = truth_set(truth)
        self._images += 1
        self._outcomes[outcome] += 1
        self._true_pairs += len(true)
        if ok and latency_ms is not None:
            self._latencies.add(latency_ms)
        # One pass: each distinct tag at its best-ranked place, as µAP pairs, and the
        # place of the first true one for top-k.
        rank: int | None = None
        for place, (key, score) in enumerate(distinct(ranked), start=1):
            if key in true:
                self._pairs_right.add(score)
                if rank is None:
                    rank = place
            else:
                self._pairs_wrong.add(score)
        if true:
            self._with_truth += 1
            if rank is not None and rank <= 5:
                self._top1 += rank == 1
                self._top5 += 1
            if ranked:
                (self._top1_right if rank == 1 else self._top1_wrong).add(ranked[0][1])

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
        top1_flags = _merge_flags(self._top1_right.descending(), self._top1_wrong.descending())
        at_95, at_99 = _coverages(top1_flags, n_images=n, targets=COVERAGE_TARGETS)
        pair_flags = _merge_flags(self._pairs_right.descending(), self._pairs_wrong.descending())
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


class _SortedPool:
    """Floats kept as descending `array('d')` runs plus an unsorted tail."""

    __slots__ = ("_runs", "_tail", "_run_size")

    def __init__(self, run_size: int) -> None:
        if run_size < 1:
            raise ValueError(f"sort_run_size must be at least 1, got {run_size}")
        self._runs: list[array[float]] = []
        self._tail: array[float] = array("d")
        self._run_size = run_size

    def __len__(self) -> int:
        return sum(map(len, self._runs)) + len(self._tail)

    def add(self, value: float) -> None:
        self._tail.append(value)
        if len(self._tail) >= self._run_size:
            self._runs.append(array("d", sorted(self._tail, reverse=True)))
            self._tail = array("d")

    def values(self) -> Iterator[float]:
        """Every value, in no particular order."""
        return chain(*self._runs, self._tail)

    def descending(self) -> Iterator[float]:
        streams: list[Iterable[float]] = list(self._runs)
        if self._tail:
            streams.append(sorted(self._tail, reverse=True))
        if len(streams) == 1:
            return iter(streams[0])
        return heapq.merge(*streams, reverse=True)


def _merge_flags(right: Iterator[float], wrong: Iterator[float]) -> Iterator[bool]:
    """Merge two descending score streams into correctness flags in ranked order:
    score descending, incorrect before correct on equal scores."""
    r = next(right, None)
    w = next(wrong, None)
    while r is not None or w is not None:
        if w is not None and (r is None or w >= r):
            yield False
            w = next(wrong, None)
        else:
            yield True
            r = next(right, None)


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
        raise ValueError(f"{what} must be a finite number, got {value!r}")

"""`ServiceScorer`'s figures for answers held as numpy arrays, all known at once (a
prediction file, SPEC §13): the same figures, computed without a Python step per tag.

What is vectorised is only the bookkeeping of `ServiceScorer.add`: which entries count
(each tag at its best-ranked place in its image), which are true, the place of the first
true one, and the ranking of pairs and top-1 answers (score descending, incorrect before
correct on ties). The figures themselves come from the definitions in
`gateway.scoring.metrics` (`coverages_of_ranked`, `micro_ap_of_ranked`), which
`ServiceScorer` uses too. tests/scoring/test_arrays.py checks, property-based, that the
two paths give equal results.

Tags come as integer identities: two entries (or an entry and a true tag) are one tag
when their identity is equal, i.e. the caller gives equal `tag_key`s equal numbers
(`gateway.scoring.ranking`'s `tag_key` and `truth_set`). The places counted here are
those of `ranking.distinct` / `ranking.place_of_truth`, done as array operations: each
tag at its first place in its image; tests/scoring/test_arrays.py holds them equal.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gateway.errors import OUTCOMES, Outcome
from gateway.scoring.metrics import (
    COVERAGE_TARGETS,
    coverages_of_ranked,
    latency_summary,
    micro_ap_of_ranked,
)

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ArrayScores:
    """The leaderboard fields (`ServiceScorer.result(elapsed_s=None)`) and each image's
    `true_rank` (0 when none: not answered, or no true tag among its tags)."""

    result: dict[str, Any]
    true_ranks: Ints


def score_arrays(
    *,
    starts: Ints,
    keys: Ints,
    scores: Floats,
    answered: Flags,
    truth_images: Ints,
    truth_keys: Ints,
) -> ArrayScores:
    """Score n images whose answers are ranked entries: image i answered the tags
    `keys[starts[i]:starts[i + 1]]` (best first) with `scores` of the same places; an
    image not `answered` is `missed`. The true set of image i is
    `truth_keys[truth_images == i]`.

    As `ServiceScorer.add` counts: a tag repeated within an image counts at its first
    place only; top-k over the images with a true set; coverage over the top-1 of each
    answered image with a true set and at least one tag; µAP over every counted tag.
    Raises ValueError for a score that is not finite or arrays that do not fit.
    """
    n = len(answered)
    if len(starts) != n + 1 or len(keys) != len(scores) or len(truth_images) != len(truth_keys):
        raise ValueError("arrays of different lengths")
    if not np.isfinite(scores).all():
        raise ValueError("score must be a finite number")
    counts = np.diff(starts)
    image = np.repeat(np.arange(n, dtype=np.int64), counts)
    width = max(1, int(keys.max(initial=0)) + 1, int(truth_keys.max(initial=0)) + 1)
    # One number per (image, tag): equal numbers are one tag of one image.
    pair = image * width + keys
    true_pairs = np.unique(truth_images * width + truth_keys)  # a true set is a set
    _, first = np.unique(pair, return_index=True)
    counted = np.zeros(len(pair), dtype=np.bool_)
    counted[first] = True
    correct = np.isin(pair, true_pairs)

    # The place of each counted entry among its image's counted entries (1-based).
    before = np.concatenate(([0], np.cumsum(counted)))
    place = before[1:] - np.repeat(before[starts[:-1]], counts)
    hits = np.nonzero(counted & correct)[0]
    true_ranks = np.zeros(n, dtype=np.int64)
    hit_images, first_hit = np.unique(image[hits], return_index=True)
    true_ranks[hit_images] = place[hits[first_hit]]

    with_truth = np.bincount(true_pairs // width, minlength=n)[:n] > 0
    n_truth = int(with_truth.sum())
    ranked_images = with_truth & answered
    top1 = int((ranked_images & (true_ranks == 1)).sum())
    top5 = int((ranked_images & (true_ranks >= 1) & (true_ranks <= 5)).sum())

    # Coverage: the first entry of each answered image with a true set and some tag.
    leaders = ranked_images & (counts > 0)
    leader_at = starts[:-1][leaders]
    coverage_at = coverages_of_ranked(
        _ranked_flags(scores[leader_at], true_ranks[leaders] == 1),
        n_images=n_truth,
        targets=COVERAGE_TARGETS,
    )
    pair_ok = counted & answered[image]
    micro_ap = micro_ap_of_ranked(
        _ranked_flags(scores[pair_ok], correct[pair_ok]), n_true=len(true_pairs)
    )
    ok = int(answered.sum())
    outcomes = dict.fromkeys(OUTCOMES, 0)
    outcomes[Outcome.OK.value] = ok
    outcomes[Outcome.MISSED.value] = n - ok
    result = {
        "images": n,
        "top1": top1 / n_truth if n_truth else None,
        "top5": top5 / n_truth if n_truth else None,
        "coverage_at_95": coverage_at[0],
        "coverage_at_99": coverage_at[1],
        "micro_ap": micro_ap,
        "latency_ms": latency_summary(()),
        "outcomes": outcomes,
        "images_per_s": None,
    }
    return ArrayScores(result=result, true_ranks=np.where(answered, true_ranks, 0))


def _ranked_flags(scores: Floats, correct: Flags) -> list[bool]:
    """The correctness flags in ranked order: score descending, incorrect first on ties
    (lexsort's last key sorts first)."""
    order = np.lexsort((correct, -scores))
    flags: list[bool] = correct[order].tolist()
    return flags

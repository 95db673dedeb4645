"""The one ranking of an answer's tags (SPEC §2, §6): every scorer counts places by it.

An answer is its `(tag, score)` entries. Ranked, they are best first by score, stable
on ties (the team's order), and a tag that repeats (equal `tag_key`: white space
trimmed, Unicode case folded, gateway/protocol/result_string.py) keeps its best-ranked
entry only, so it takes one place. The protocol's `rank` orders an answer when it is
parsed; what is stored is that order, but results recorded before the rule may hold
repeats, so the scorers walk an answer through `distinct` rather than trust it.

`ServiceScorer` (µAP pairs and top-k), `LiveTally` (top-k while a run goes), the
per-image `true_rank` of exports and per-class figures, and the tag numbering that
`gateway.scoring.arrays` is fed (`truth_set`, `tag_key`) all come from here;
tests/scoring/test_ranking.py fails if a second definition appears.
"""

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from gateway.protocol.result_string import Tag, rank, tag_key

__all__ = [
    "Tag",
    "distinct",
    "first_true_place",
    "place_of_truth",
    "rank",
    "tag_key",
    "true_rank",
    "truth_set",
]


def truth_set(truth: Iterable[str]) -> frozenset[str]:
    """An image's true tags by `tag_key`; entries that are empty once trimmed are dropped."""
    return frozenset(n for n in map(tag_key, truth) if n)


def distinct(tags: Iterable[tuple[str, float]]) -> Iterator[tuple[str, float]]:
    """The `(tag_key, score)` of each distinct tag of entries ranked best first, at its
    best-ranked place: the n-th pair yielded is the tag at place n."""
    seen: set[str] = set()
    for tag, score in tags:
        key = tag_key(str(tag))
        if key not in seen:
            seen.add(key)
            yield key, score


def place_of_truth(
    keys: Iterable[str], true: frozenset[str], *, within: int | None = None
) -> int | None:
    """The 1-based place of the first true key among distinct `keys` (as `distinct`
    yields them), or None; with `within`, None past that place too."""
    for place, key in enumerate(keys, start=1):
        if key in true:
            return place
        if within is not None and place >= within:
            return None
    return None


def true_rank(tags: Sequence[str], truth: Iterable[str]) -> int | None:
    """The 1-based place of the first true tag among the distinct tags of `tags` (ranked
    best first; a repeat takes no place), or None."""
    keys = (key for key, _ in distinct((tag, 0.0) for tag in tags))
    return place_of_truth(keys, truth_set(truth))


def first_true_place(
    tags: Iterable[Sequence[Any]], true: frozenset[str], *, within: int
) -> int | None:
    """`place_of_truth` of the distinct tags of ranked `(tag, score)` entries, within
    `within` places, in one loop: the live scores count top-k with it for every result
    recorded (gateway.scoring.live)."""
    seen: set[str] = set()
    for entry in tags:
        key = tag_key(str(entry[0]))
        if key in seen:
            continue
        if key in true:
            return len(seen) + 1
        seen.add(key)
        if len(seen) >= within:
            return None
    return None

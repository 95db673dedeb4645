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
    "distinct_lists",
    "first_true_place",
    "place_of_truth",
    "rank",
    "tag_key",
    "true_rank",
    "truth_set",
]


# Folded tags and true sets seen lately, by what was folded: a worker ranks every result
# it records (against its image's true tags) and a run's answers and true sets draw on a
# dataset's few labels. Each is emptied once it holds this many.
_CACHED = 16_384
_keys: dict[str, str] = {}
_true_sets: dict[tuple[str, ...], frozenset[str]] = {}


def _key(tag: Any) -> str:
    """`tag_key(str(tag))`: a tag as the ranking compares it."""
    if type(tag) is not str:
        return tag_key(str(tag))
    key = _keys.get(tag)
    if key is None:
        if len(_keys) >= _CACHED:
            _keys.clear()
        key = _keys[tag] = tag_key(tag)
    return key


def truth_set(truth: Iterable[str]) -> frozenset[str]:
    """An image's true tags by `tag_key`; entries that are empty once trimmed are dropped."""
    tags = tuple(truth)
    try:
        found = _true_sets.get(tags)
    except TypeError:  # an entry that is no text: folding it raises as it should
        return frozenset(n for n in map(tag_key, tags) if n)
    if found is None:
        if len(_true_sets) >= _CACHED:
            _true_sets.clear()
        found = _true_sets[tags] = frozenset(n for n in map(tag_key, tags) if n)
    return found


def distinct(tags: Iterable[tuple[str, float]]) -> Iterator[tuple[str, float]]:
    """The `(tag_key, score)` of each distinct tag of entries ranked best first, at its
    best-ranked place: the n-th pair yielded is the tag at place n."""
    seen: set[str] = set()
    for tag, score in tags:
        key = _key(tag)
        if key not in seen:
            seen.add(key)
            yield key, score


def distinct_lists(tags: Iterable[Sequence[Any]]) -> tuple[list[str], list[float]]:
    """`distinct`, at once, as two lists: the keys and the scores of the distinct tags, at
    their places. Raises ValueError for an entry that is not a (tag, score) pair."""
    get = _keys.get
    keys: list[str] = []
    scores: list[float] = []
    try:
        for tag, score in tags:
            key = get(tag)  # a text folded lately (no other type equals one)
            keys.append(_key(tag) if key is None else key)
            scores.append(score)
    except TypeError:  # a tag that cannot be looked up (or entries that are no pairs)
        pairs = [(tag, score) for tag, score in tags]
        keys, scores = [_key(tag) for tag, _ in pairs], [score for _, score in pairs]
    if len(set(keys)) == len(keys):  # as `rank` leaves a parsed answer
        return keys, scores
    seen: set[str] = set()
    kept: tuple[list[str], list[float]] = ([], [])
    for key, score in zip(keys, scores, strict=True):
        if key not in seen:
            seen.add(key)
            kept[0].append(key)
            kept[1].append(score)
    return kept


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
        key = _key(entry[0])
        if key in seen:
            continue
        if key in true:
            return len(seen) + 1
        seen.add(key)
        if len(seen) >= within:
            return None
    return None

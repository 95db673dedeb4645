"""The array path of the scores (gateway/scoring/arrays.py) equals `ServiceScorer` on
any answers: the same figures, exactly, and the same `true_rank` per image."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocol.result_string import tag_key
from gateway.scoring.arrays import score_arrays
from gateway.scoring.metrics import ServiceScorer, true_rank, truth_set

# Spellings that are one tag (`Dog`, ` dog`), and tags that are not true anywhere.
TAGS = st.sampled_from(["dog", "Dog", " dog ", "cat", "CAT", "bird", "x", "y", "Straße", "STRASSE"])
SCORES = st.sampled_from([0.0, 0.25, 0.5, 0.5, 1.0, -3.0, 1e-9]) | st.floats(-10, 10)
IMAGE = st.tuples(
    st.booleans() | st.just(True),  # answered (else missed)
    st.lists(st.tuples(TAGS, SCORES), max_size=7),  # entries, best first as given
    st.lists(TAGS | st.just("  "), max_size=3),  # true tags (an empty one is dropped)
)


def by_array_path(images: list[tuple[bool, list[tuple[str, float]], list[str]]]):  # type: ignore[no-untyped-def]
    identity: dict[str, int] = {}

    def key_of(tag: str) -> int:
        return identity.setdefault(tag_key(tag), len(identity))

    starts, keys, scores, truth_images, truth_keys = [0], [], [], [], []
    for i, (_, entries, truth) in enumerate(images):
        for tag, score in entries:
            keys.append(key_of(tag))
            scores.append(score)
        starts.append(len(keys))
        for key in sorted(truth_set(truth)):
            truth_images.append(i)
            truth_keys.append(key_of(key))
    return score_arrays(
        starts=np.array(starts, dtype=np.int64),
        keys=np.array(keys, dtype=np.int64),
        scores=np.array(scores, dtype=np.float64),
        answered=np.array([answered for answered, _, _ in images], dtype=np.bool_),
        truth_images=np.array(truth_images, dtype=np.int64),
        truth_keys=np.array(truth_keys, dtype=np.int64),
    )


@settings(max_examples=400)
@given(st.lists(IMAGE, max_size=25))
def test_array_path_equals_service_scorer(
    images: list[tuple[bool, list[tuple[str, float]], list[str]]],
) -> None:
    scorer = ServiceScorer()
    ranks = []
    for answered, entries, truth in images:
        outcome = "ok" if answered else "missed"
        scorer.add(outcome=outcome, tags=entries, truth=truth, latency_ms=None)
        ranks.append(true_rank([tag for tag, _ in entries], truth) if answered else None)
    arrays = by_array_path(images)
    assert arrays.result == scorer.result(elapsed_s=None)
    assert [rank or None for rank in arrays.true_ranks.tolist()] == ranks


def test_spec_micro_ap_examples_on_the_array_path() -> None:
    # [(0.9,T),(0.8,F),(0.7,T)], N_gt = 3 -> 0.5556; [(0.5,T),(0.5,F)], N_gt = 1 -> 0.5.
    first = by_array_path(
        [(True, [("a", 0.9), ("b", 0.8)], ["a"]), (True, [("c", 0.7)], ["c"]), (False, [], ["d"])]
    )
    assert round(first.result["micro_ap"], 4) == 0.5556
    second = by_array_path([(True, [("a", 0.5), ("b", 0.5)], ["b"])])
    assert second.result["micro_ap"] == 0.5
    assert second.true_ranks.tolist() == [2]

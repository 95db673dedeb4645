"""The descriptor track's nearest-neighbour search equals a brute-force numpy search on
the same data, and so does the µAP it leads to."""

import numpy as np
import pytest

from gateway.offline.answers import Catalogue
from gateway.offline.descriptors import Descriptors
from gateway.offline.knn import nearest_references
from gateway.offline.scoring import ImageResult
from gateway.offline.submission import evaluate
from gateway.scoring.metrics import micro_average_precision
from tests.builders import descriptors_file


def brute_force(query: np.ndarray, reference: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every distance in float64, each query's k smallest."""
    distances = np.sqrt(
        ((query[:, None, :].astype(np.float64) - reference[None, :, :]) ** 2).sum(axis=2)
    )
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return nearest, np.take_along_axis(distances, nearest, axis=1)


@pytest.mark.parametrize("container", ["npz", "hdf5"])
def test_search_and_micro_ap_equal_a_numpy_brute_force(container: str) -> None:
    rng = np.random.default_rng(7)
    n, m, d, k = 60, 500, 24, 10
    image_ids = [f"q{i}" for i in range(n + 5)]  # 5 queries the file leaves out
    reference_ids = [f"r{j}" for j in range(m + 3)]  # 3 references it does not give
    query = rng.normal(size=(n, d)).astype(np.float32)
    reference = rng.normal(size=(m, d)).astype(np.float32)
    file_refs = rng.permutation(m)  # the file lists references in its own order
    truth = [
        [f"r{j}" for j in rng.choice(m + 3, size=rng.integers(0, 3), replace=False)]
        for _ in image_ids
    ]
    results: list[ImageResult] = []
    scores = evaluate(
        descriptors_file(
            {
                "query_ids": image_ids[:n],
                "query": query,
                "reference_ids": [reference_ids[j] for j in file_refs],
                "reference": reference[file_refs],
            },
            container=container,
        ),
        format="isc-descriptors",
        catalogue=Catalogue(image_ids=image_ids, reference_ids=reference_ids),
        truth=truth,
        k=k,
        on_results=results.extend,
    )
    nearest, distances = brute_force(query, reference, k)
    pairs = []
    for i in range(n):
        found = results[i]
        assert [tag for tag, _ in found.tags] == [f"r{j}" for j in nearest[i]]
        np.testing.assert_allclose([-s for _, s in found.tags], distances[i], rtol=1e-4)
        true = set(truth[i])
        pairs += [
            (-dist, f"r{j}" in true) for j, dist in zip(nearest[i], distances[i], strict=True)
        ]
    assert [r.outcome for r in results[n:]] == ["missed"] * 5
    n_gt = sum(len(t) for t in truth)
    assert scores["micro_ap"] == pytest.approx(
        micro_average_precision(pairs, n_true=n_gt), rel=1e-6
    )


def test_fewer_references_than_k_gives_each_of_them_and_progress_reaches_the_end() -> None:
    catalogue = Catalogue(image_ids=["a", "b", "c"], reference_ids=["r1", "r2"])
    descriptors = Descriptors(
        queries=np.array([2, 0]),
        query=np.array([[0.0], [5.0]], dtype=np.float32),
        references=np.array([1, 0]),
        reference=np.array([[1.0], [4.0]], dtype=np.float32),
    )
    seen: list[tuple[int, int]] = []
    answers = nearest_references(
        descriptors,
        catalogue=catalogue,
        k=10,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (2, 2)
    assert answers.answered.tolist() == [True, False, True]
    # c (0): r2 at 1, r1 at 4; a (5): r1 at 1, r2 at 4.
    assert answers.tags.tolist() == [0, 1, 1, 0]
    assert answers.scores.tolist() == [-1.0, -4.0, -1.0, -4.0]
    with pytest.raises(ValueError, match="k must be at least 1"):
        nearest_references(descriptors, catalogue=catalogue, k=0)

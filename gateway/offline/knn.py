"""Exact k-nearest-neighbour search of the descriptor track (SPEC §13): each query's `k`
nearest references by L2 distance, each pair scored by its negative distance, as the
Image Similarity Challenge scored descriptors.

faiss does the search (`faiss.knn`, the exact brute force behind `IndexFlatL2`, over
BLAS, without copying the references into an index), in blocks of queries so progress
can be reported and the distance matrix stays one block big. It is CPU-bound and takes
seconds to minutes: call it in a worker thread or process, never on the event loop.
"""

from collections.abc import Callable

import numpy as np

from gateway.offline.answers import AnswersBuilder, Catalogue, RankedAnswers
from gateway.offline.descriptors import Descriptors

DEFAULT_K = 10
QUERY_BLOCK = 2048
# faiss's OpenMP threads for the search. One: on this hub's 2 shared cores a second
# thread spent more CPU spinning than it saved (bench_offline.py: 7.3 s of CPU with one
# thread, 12-16 s with two, for 10,000 x 100,000 x 256), and one core stays free for
# the API and the dispatch worker while a file is scored.
SEARCH_THREADS = 1

Progress = Callable[[int, int], None]


def nearest_references(
    descriptors: Descriptors,
    *,
    catalogue: Catalogue,
    k: int = DEFAULT_K,
    threads: int = SEARCH_THREADS,
    progress: Progress | None = None,
) -> RankedAnswers:
    """Each query's `k` nearest references (fewer when the file has fewer), best first,
    score = -L2 distance. Every query of the file is answered; the phase's other images
    are `missed`. `progress(done, total)` is called after each block of queries.
    `threads` sets faiss's thread count (process-wide). Raises ValueError for k < 1."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    import faiss  # only the descriptor track pays for importing faiss

    built = AnswersBuilder(images=len(catalogue.image_ids), tag_names=catalogue.reference_ids)
    queries = descriptors.queries
    total = len(queries)
    for image in queries.tolist():
        built.answer(image)
    reference = descriptors.reference
    if len(reference) == 0 or total == 0:
        if progress is not None:
            progress(total, total)
        return built.finish()
    faiss.omp_set_num_threads(threads)
    nearest = min(k, len(reference))
    for start in range(0, total, QUERY_BLOCK):
        block = descriptors.query[start : start + QUERY_BLOCK]
        squared, found = faiss.knn(block, reference, nearest)
        # faiss gives squared distances; rounding can make a tiny one negative.
        scores = -np.sqrt(np.maximum(squared, 0.0, dtype=np.float64))
        refs = descriptors.references[found]
        images = np.repeat(queries[start : start + len(block)], nearest)
        built.add_arrays(images, refs.ravel(), scores.ravel())
        if progress is not None:
            progress(min(start + QUERY_BLOCK, total), total)
    return built.finish()

"""1,000 random prediction sets scored by the hub and by something else: scikit-learn's
`top_k_accuracy_score` for top-1/top-5, and for µAP an implementation written here from
SPEC §6's text (and scikit-learn's `average_precision_score` where no scores tie, where
the two definitions agree), and each also by the scorer of a run service fed the file's
per-image results. No mismatch is allowed."""

import random

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, top_k_accuracy_score

from gateway.offline.answers import Catalogue
from gateway.offline.scoring import ImageResult
from gateway.offline.submission import evaluate
from gateway.protocol.result_string import format_result
from gateway.scoring.metrics import ServiceScorer
from tests.builders import matching_file, text_file

SETS = 1000
SEED = 20261204


def spec_micro_ap(pairs: list[tuple[float, bool]], n_gt: int) -> float:
    """SPEC §6, as written: sort by score descending, incorrect before correct on ties;
    µAP = Σ (r_i − r_{i−1}) · p_i with p_i = TP_i / i, r_i = TP_i / N_gt."""
    ranked = sorted(pairs, key=lambda pair: (-pair[0], pair[1]))
    total, tp, previous_recall = 0.0, 0, 0.0
    for i, (_, correct) in enumerate(ranked, start=1):
        tp += correct
        recall = tp / n_gt
        total += (recall - previous_recall) * (tp / i)
        previous_recall = recall
    return total


def scored_like_a_run(
    lines: list[str] | list[tuple[str, str, float]],
    *,
    file_format: str,
    catalogue: Catalogue,
    truth: list[list[str]],
) -> dict[str, object]:
    """The file's scores, after asserting them equal to what the scorer of a run service
    (`ServiceScorer`, fed the per-image results) gives."""
    results: list[ImageResult] = []
    stream = (
        matching_file(lines)  # type: ignore[arg-type]
        if file_format == "isc-matching"
        else text_file(lines)  # type: ignore[arg-type]
    )
    scores = evaluate(
        stream, format=file_format, catalogue=catalogue, truth=truth, on_results=results.extend
    )
    scorer = ServiceScorer()
    for result, true in zip(results, truth, strict=True):
        scorer.add(outcome=result.outcome, tags=result.tags, truth=true, latency_ms=None)
    expected = scorer.result(elapsed_s=None)
    if file_format == "ilsvrc":  # no scores: no coverage, no µAP
        expected.update(coverage_at_95=None, coverage_at_99=None, micro_ap=None)
    assert scores == expected
    return scores


def classification_set(rng: random.Random, index: int) -> tuple[int, int]:
    """Score one random classification set; returns (top-1 hits, top-5 hits) the hub
    found, after asserting them equal to scikit-learn's."""
    n_labels = rng.randint(6, 12)  # scikit-learn warns (an error here) when k >= labels
    n_images = rng.randint(1, 25)
    labels = [f"L{j}" for j in range(n_labels)]
    image_ids = [f"img{i}" for i in range(n_images)]
    y_true = [rng.randrange(n_labels) for _ in range(n_images)]
    scores = np.array([[rng.random() for _ in labels] for _ in image_ids])
    answered = [rng.random() < 0.85 for _ in image_ids]
    catalogue = Catalogue(image_ids=image_ids, labels=labels)
    truth = [[labels[y]] for y in y_true]
    if index % 2:  # ILSVRC: the 5 best as labels or 1-based indices, best first
        lines = []
        for i in range(n_images):
            best = np.argsort(-scores[i])[:5].tolist()
            tokens = [labels[j] if rng.random() < 0.5 else str(j + 1) for j in best]
            lines.append(" ".join(tokens) if answered[i] else "")
        if not answered[-1]:  # a left-out last image: no line at all (missed)
            lines.pop()
        file_format = "ilsvrc"
    else:  # recoghub-tsv: every label with its score, in a shuffled order
        lines = []
        for i in range(n_images):
            if answered[i]:
                entries = [(labels[j], float(scores[i, j])) for j in range(n_labels)]
                rng.shuffle(entries)
                lines.append(f"{image_ids[i]}\t{format_result(entries)}")
        rng.shuffle(lines)
        file_format = "recoghub-tsv"
    result = scored_like_a_run(lines, file_format=file_format, catalogue=catalogue, truth=truth)
    rows = [i for i in range(n_images) if answered[i]]
    hits = []
    for k, field in ((1, "top1"), (5, "top5")):
        expected = 0.0
        if rows:
            expected = top_k_accuracy_score(
                [y_true[i] for i in rows],
                scores[rows],
                k=k,
                labels=list(range(n_labels)),
                normalize=False,
            )
        hub = round(result[field] * n_images)
        assert hub == expected, (index, field)
        hits.append(hub)
    return hits[0], hits[1]


def matching_set(rng: random.Random, index: int) -> None:
    n_queries = rng.randint(1, 20)
    n_refs = rng.randint(1, 30)
    queries = [f"Q{i}" for i in range(n_queries)]
    refs = [f"R{j}" for j in range(n_refs)]
    truth = [rng.sample(refs, rng.randint(0, min(2, n_refs))) for _ in queries]
    tied = index % 2 == 0  # half the sets draw scores from 4 values: many ties
    rows: list[tuple[str, str, float]] = []
    for q, query in enumerate(queries):
        for ref in rng.sample(refs, rng.randint(0, min(6, n_refs))):
            score = rng.choice([0.1, 0.25, 0.5, 0.75]) if tied else rng.random()
            rows.append((query, ref, score))
        del q
    rng.shuffle(rows)
    catalogue = Catalogue(image_ids=queries, reference_ids=refs)
    result = scored_like_a_run(rows, file_format="isc-matching", catalogue=catalogue, truth=truth)
    n_gt = sum(len(t) for t in truth)
    true_pairs = {(queries[q], ref) for q, refs_of in enumerate(truth) for ref in refs_of}
    pairs = [(score, (q, r) in true_pairs) for q, r, score in rows]
    if n_gt == 0:
        assert result["micro_ap"] is None
        return
    assert result["micro_ap"] == pytest.approx(spec_micro_ap(pairs, n_gt), rel=1e-12, abs=1e-15)
    positives = sum(correct for _, correct in pairs)
    if not tied and positives and positives < len(pairs):
        ap = average_precision_score([c for _, c in pairs], [s for s, _ in pairs])
        # scikit-learn's recall is over the pairs returned; SPEC §6's over all N_gt.
        assert result["micro_ap"] == pytest.approx(ap * positives / n_gt, rel=1e-9)


def test_a_thousand_random_prediction_sets_match_scikit_learn_and_the_spec() -> None:
    rng = random.Random(SEED)
    top5_hits = 0
    for index in range(SETS):
        if index % 4 < 2:
            top5_hits += classification_set(rng, index)[1]
        else:
            matching_set(rng, index)
    assert top5_hits > 0  # the sets did reach images the hub counted right


def test_the_spec_micro_ap_of_this_file_meets_the_spec_examples() -> None:
    assert round(spec_micro_ap([(0.9, True), (0.8, False), (0.7, True)], 3), 4) == 0.5556
    assert spec_micro_ap([(0.5, True), (0.5, False)], 1) == 0.5

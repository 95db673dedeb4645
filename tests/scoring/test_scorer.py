"""The streaming ServiceScorer: SPEC §6 cases, a brute-force reference, and memory."""

import math
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import OUTCOMES, Outcome
from gateway.scoring.metrics import ServiceScorer

LATENCY_NONE = dict.fromkeys(["p50", "p90", "p99", "max", "mean"], None)


@dataclass(frozen=True)
class Image:
    outcome: str
    tags: list[tuple[str, float]]
    truth: list[str]
    latency_ms: float | None


def score(images: Sequence[Image], *, elapsed_s: float | None = None, **kw: int) -> dict[str, Any]:
    scorer = ServiceScorer(**kw)
    for image in images:
        scorer.add(
            outcome=image.outcome,
            tags=image.tags,
            truth=image.truth,
            latency_ms=image.latency_ms,
        )
    return scorer.result(elapsed_s=elapsed_s)


def ok(tags: str, truth: Sequence[str], latency_ms: float | None = 10.0) -> Image:
    """An ok image from a result string already ranked best first, e.g. "cat:0.9;dog:0.8"."""
    pairs = [(t, float(s)) for t, s in (e.rsplit(":", 1) for e in tags.split(";") if e)]
    return Image(Outcome.OK, pairs, list(truth), latency_ms)


# --- SPEC §6 cases through the scorer -------------------------------------------------


def test_top_k_spec_example() -> None:
    result = score([ok("cat:0.9;dog:0.8", ["dog"])])
    assert result["top1"] == 0.0
    assert result["top5"] == 1.0


def test_top5_stops_at_five() -> None:
    result = score([ok("a:6;b:5;c:4;d:3;e:2;dog:1", ["dog"])])
    assert result["top5"] == 0.0


def test_coverage_spec_example() -> None:
    images = [
        ok("dog:0.9", ["dog"]),
        ok("cat:0.8", ["cat"]),
        ok("owl:0.7", ["fox"]),
        ok("elk:0.6", ["elk"]),
    ]
    result = score(images)
    assert result["coverage_at_95"] == 0.5
    assert result["coverage_at_99"] == 0.5
    assert result["top1"] == 0.75


def test_micro_ap_spec_example() -> None:
    # [(0.9,T),(0.8,F),(0.7,T)] with a third true pair never predicted: N_gt = 3.
    images = [ok("dog:0.9;cat:0.8", ["dog"]), ok("elk:0.7", ["elk"]), ok("", ["owl"])]
    assert score(images)["micro_ap"] == pytest.approx(5 / 9)
    # [(0.5,T),(0.5,F)], N_gt = 1: on the tie the wrong pair ranks first.
    assert score([ok("dog:0.5;cat:0.5", ["dog"])])["micro_ap"] == 0.5


def test_matching_is_case_insensitive_with_white_space_trimmed() -> None:
    result = score([ok(" Golden Retriever :0.9", ["golden retriever"]), ok("DOG:1", [" dog "])])
    assert result["top1"] == 1.0
    assert result["micro_ap"] == 1.0


def test_distractors_are_left_out_of_top_k_and_coverage_but_count_in_micro_ap() -> None:
    images = [ok("dog:0.9", ["dog"]), ok("cat:0.95", [])]
    result = score(images)
    assert result["images"] == 2
    assert result["top1"] == 1.0
    assert result["coverage_at_99"] == 1.0
    assert result["micro_ap"] == 0.5  # the distractor's cat:0.95 is a wrong pair first


def test_abstentions_are_not_recognized() -> None:
    images = [ok("dog:0.9", ["dog"]), ok("", ["cat"])]
    result = score(images)
    assert result["top1"] == 0.5
    assert result["top5"] == 0.5
    assert result["coverage_at_95"] == 0.5
    assert result["micro_ap"] == 0.5


def test_non_ok_outcomes_count_as_wrong_and_their_tags_are_ignored() -> None:
    images = [
        ok("dog:0.9", ["dog"], latency_ms=5.0),
        Image(Outcome.TIMEOUT, [("cat", 1.0)], ["cat"], 2000.0),
        Image(Outcome.HTTP_ERROR, [], ["elk"], None),
        Image(Outcome.BAD_FORMAT, [("owl", 0.1)], ["owl"], 3.0),
    ]
    result = score(images)
    assert result["top1"] == 0.25
    assert result["top5"] == 0.25
    assert result["coverage_at_95"] == 0.25
    assert result["micro_ap"] == 0.25
    assert result["latency_ms"] == {"p50": 5.0, "p90": 5.0, "p99": 5.0, "max": 5.0, "mean": 5.0}
    assert result["outcomes"] == {
        "ok": 1,
        "timeout": 1,
        "connect_error": 0,
        "http_error": 1,
        "bad_format": 1,
        "too_large": 0,
        "unreachable": 0,
        "missed": 0,
    }


def test_unreachable_and_missed_images_count_as_wrong() -> None:
    result = score(
        [
            ok("dog:0.9", ["dog"]),
            Image(Outcome.UNREACHABLE, [], ["cat"], None),
            Image(Outcome.MISSED, [], ["elk"], None),
        ]
    )
    assert result["images"] == 3
    assert result["top1"] == result["top5"] == pytest.approx(1 / 3)
    assert result["outcomes"]["unreachable"] == result["outcomes"]["missed"] == 1


def test_repeated_tags_once_normalized_are_one_pair() -> None:
    result = score([ok("Dog:0.9;dog :0.8;cat:0.7", ["dog"])])
    assert result["micro_ap"] == 1.0


def test_cat_and_cat_take_one_top5_place() -> None:
    # A list recorded before repeats were folded still scores by SPEC §2's rule.
    result = score([ok("Cat:0.9;cat:0.8;a:0.7;b:0.6;c:0.5;dog:0.4", ["dog"])])
    assert result["top5"] == 1.0
    assert result["top1"] == 0.0
    # Cat counted once as a wrong pair: dog is the 5th pair of 5 returned.
    assert result["micro_ap"] == pytest.approx(1 / 5)


def test_true_tags_fold_like_answer_tags() -> None:
    result = score([ok("STRASSE:0.9", ["Straße"]), ok("cat:0.8", [" CAT\n", "Cat"])])
    assert result["top1"] == 1.0
    assert result["micro_ap"] == 1.0  # "CAT" and "Cat" are one true pair: N_gt = 2


def test_coverage_is_null_when_no_image_has_a_true_set() -> None:
    result = score([ok("dog:0.9", []), ok("cat:0.8", [" "]), ok("", [])])
    assert result["coverage_at_95"] is None and result["coverage_at_99"] is None
    assert result["top1"] is None and result["top5"] is None


def test_latency_and_throughput() -> None:
    images = [ok("dog:1", ["dog"], latency_ms=float(v)) for v in range(10, 0, -1)]
    result = score(images, elapsed_s=4.0)
    assert result["latency_ms"] == {"p50": 5.0, "p90": 9.0, "p99": 10.0, "max": 10.0, "mean": 5.5}
    assert result["images_per_s"] == 2.5


def test_empty_scorer_has_no_metrics() -> None:
    assert score([], elapsed_s=1.0) == {
        "images": 0,
        "top1": None,
        "top5": None,
        "coverage_at_95": None,
        "coverage_at_99": None,
        "micro_ap": None,
        "latency_ms": LATENCY_NONE,
        "outcomes": dict.fromkeys(OUTCOMES, 0),
        "images_per_s": 0.0,
    }


def test_metrics_that_do_not_apply_are_none() -> None:
    result = score([ok("dog:1", [], latency_ms=None)], elapsed_s=0)
    assert result["top1"] is None
    assert result["coverage_at_95"] is None
    assert result["micro_ap"] is None
    assert result["latency_ms"] == LATENCY_NONE
    assert result["images_per_s"] is None
    assert score([], elapsed_s=None)["images_per_s"] is None


def test_result_can_be_taken_again_as_images_arrive() -> None:
    scorer = ServiceScorer(sort_run_size=2)
    for image in [ok("dog:0.9", ["dog"]), ok("cat:0.8", ["elk"]), ok("elk:0.7", ["elk"])]:
        scorer.add(
            outcome=image.outcome, tags=image.tags, truth=image.truth, latency_ms=image.latency_ms
        )
        first = scorer.result(elapsed_s=None)
        assert scorer.result(elapsed_s=None) == first
    assert scorer.images == 3
    assert first["top1"] == pytest.approx(2 / 3)


def test_bad_input_is_rejected_and_not_counted() -> None:
    scorer = ServiceScorer()
    with pytest.raises(ValueError, match="unknown outcome 'lost'"):
        scorer.add(outcome="lost", tags=[], truth=["dog"], latency_ms=None)
    with pytest.raises(ValueError, match="score must be a finite number"):
        scorer.add(outcome="ok", tags=[("dog", math.nan)], truth=["dog"], latency_ms=1.0)
    with pytest.raises(ValueError, match="latency_ms must be a finite number"):
        scorer.add(outcome="ok", tags=[], truth=["dog"], latency_ms=math.inf)
    assert scorer.result(elapsed_s=None) == score([])
    with pytest.raises(ValueError, match="elapsed_s must not be negative"):
        scorer.result(elapsed_s=-1.0)
    with pytest.raises(ValueError, match="sort_run_size must be at least 1"):
        ServiceScorer(sort_run_size=0)


# --- property tests against a brute-force reference -----------------------------------


def norm(tag: str) -> str:
    return tag.strip().casefold()


def reference(images: Sequence[Image]) -> dict[str, Any]:
    """SPEC §6 read literally, with exact fractions and every cutoff tried."""
    truths = [{norm(t) for t in image.truth if norm(t)} for image in images]
    answers = [image.tags if image.outcome == "ok" else [] for image in images]
    scored = [(answer, truth) for answer, truth in zip(answers, truths, strict=True) if truth]
    n = len(scored)

    def distinct(answer: list[tuple[str, float]]) -> list[str]:
        # SPEC §2: a repeat (once trimmed and folded) keeps its best-ranked place only.
        return list(dict.fromkeys(norm(tag) for tag, _ in answer))

    def top_k(k: int) -> float | None:
        hits = sum(any(t in truth for t in distinct(answer)[:k]) for answer, truth in scored)
        return hits / n if n else None

    def ranked(pairs: list[tuple[float, bool]]) -> list[bool]:
        # score descending, incorrect before correct on equal scores
        return [correct for _, correct in sorted(pairs, key=lambda p: (-p[0], p[1]))]

    top1 = ranked([(a[0][1], norm(a[0][0]) in truth) for a, truth in scored if a])

    def coverage(p: Fraction) -> float | None:
        if not n:
            return None
        best = Fraction(0)
        for m in range(1, len(top1) + 1):
            if Fraction(sum(top1[:m]), m) >= p:
                best = max(best, Fraction(m, n))
        return float(best)

    pairs: list[tuple[float, bool]] = []
    for answer, truth in zip(answers, truths, strict=True):
        seen: set[str] = set()
        for tag, s in answer:
            if norm(tag) not in seen:
                seen.add(norm(tag))
                pairs.append((s, norm(tag) in truth))
    n_gt = sum(map(len, truths))
    micro_ap: float | None = None
    if n_gt:
        flags = ranked(pairs)
        total, r_prev = Fraction(0), Fraction(0)
        for i in range(1, len(flags) + 1):
            tp = sum(flags[:i])
            r_i = Fraction(tp, n_gt)
            total += (r_i - r_prev) * Fraction(tp, i)
            r_prev = r_i
        micro_ap = float(total)

    latencies = sorted(
        image.latency_ms
        for image in images
        if image.outcome == "ok" and image.latency_ms is not None
    )

    def nearest_rank(p: int) -> float | None:
        # the smallest value with at least p% of the values at or below it
        for v in latencies:
            if 100 * sum(x <= v for x in latencies) >= p * len(latencies):
                return v
        return None

    return {
        "images": len(images),
        "top1": top_k(1),
        "top5": top_k(5),
        "coverage_at_95": coverage(Fraction(95, 100)),
        "coverage_at_99": coverage(Fraction(99, 100)),
        "micro_ap": micro_ap,
        "latency_ms": {
            "p50": nearest_rank(50),
            "p90": nearest_rank(90),
            "p99": nearest_rank(99),
            "max": max(latencies, default=None),
            "mean": math.fsum(latencies) / len(latencies) if latencies else None,
        },
        "outcomes": {o: sum(image.outcome == o for image in images) for o in OUTCOMES},
    }


# Few distinct tags and scores, so that matches, repeats and ties are common.
TAGS = st.sampled_from(["dog", "Dog", " dog ", "cat", "CAT", "elk", "owl", "fox"])
SCORES = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(0, 1))


@st.composite
def images(draw: st.DrawFn) -> Image:
    entries = draw(st.lists(st.tuples(TAGS, SCORES), max_size=7))
    # Score descending, stable; an exact repeat keeps its best. Folded repeats (`Dog`,
    # `dog`) stay, as in results recorded before SPEC §2 folded them: the scorer must
    # still count each tag once.
    ranked: list[tuple[str, float]] = []
    for tag, s in sorted(entries, key=lambda e: -e[1]):
        if tag not in (t for t, _ in ranked):
            ranked.append((tag, s))
    truth = draw(st.lists(st.sampled_from(["dog", "DOG ", "cat", "owl", "bear", " "]), max_size=3))
    outcome = draw(st.sampled_from([*OUTCOMES, "ok", "ok", "ok", "ok"]))
    latency = draw(st.one_of(st.none(), st.sampled_from([1.0, 2.0, 3.0]), st.floats(0, 1e4)))
    return Image(outcome, ranked, truth, latency)


@settings(max_examples=300, deadline=None)
@given(st.lists(images(), max_size=40), st.integers(1, 6))
def test_streaming_scorer_matches_the_reference(batch: list[Image], run_size: int) -> None:
    result = score(batch, sort_run_size=run_size)
    expected = reference(batch)
    micro_ap, want_micro_ap = result.pop("micro_ap"), expected.pop("micro_ap")
    mean, want_mean = result["latency_ms"].pop("mean"), expected["latency_ms"].pop("mean")
    assert result.pop("images_per_s") is None
    assert result == expected
    assert micro_ap == (None if want_micro_ap is None else pytest.approx(want_micro_ap))
    assert mean == (None if want_mean is None else pytest.approx(want_mean))


# --- memory ---------------------------------------------------------------------------


def test_state_is_compact_and_result_needs_little_extra_memory() -> None:
    n_images = 20_000
    tracemalloc.start()
    try:
        scorer = ServiceScorer()
        for i in range(n_images):
            tags = [(f"t{(i + j) % 97}", 1.0 - j / 10 - i / 1e6) for j in range(5)]
            scorer.add(outcome="ok", tags=tags, truth=[f"t{i % 89}"], latency_ms=i % 500 / 7)
        held, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = scorer.result(elapsed_s=10.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 7 floats an image (5 pairs, a top-1 and a latency) is 56 bytes; sorting everything
    # into Python floats and lists would take over 200 bytes an image more.
    assert held < 80 * n_images
    assert peak - held < 2_500_000
    assert result["images"] == n_images


def ranked_top1(right: int, wrong: int) -> list[Image]:
    """`right` images answered correctly, then `wrong` answered wrongly with lower scores."""
    images = [ok(f"t{i}:{1 - i / 1000}", [f"t{i}"]) for i in range(right)]
    return images + [ok(f"x:{0.5 - i / 1000}", [f"t{i}"]) for i in range(wrong)]


def test_coverage_at_95_and_99_compare_precision_exactly() -> None:
    # 189 right then 11 wrong: precision 189/198 is above 0.95, 189/199 is below.
    at_95 = score(ranked_top1(189, 11))
    assert at_95["coverage_at_95"] == pytest.approx(198 / 200)
    assert at_95["coverage_at_99"] == pytest.approx(190 / 200)
    # 197 right then 3 wrong: precision 197/198 is at least 0.99, 197/199 is not.
    at_99 = score(ranked_top1(197, 3))
    assert at_99["coverage_at_99"] == pytest.approx(198 / 200)
    assert at_99["coverage_at_95"] == 1.0

"""The pure metric functions against the worked examples of SPEC §6."""

from fractions import Fraction

import pytest

from gateway.protocol.result_string import tag_key
from gateway.scoring.metrics import (
    coverage_at_precision,
    latency_summary,
    micro_average_precision,
    normalize_tag,
    percentile,
    top_k_correct,
    true_rank,
    truth_set,
)

# SPEC §6: (0.9 ✓)(0.8 ✓)(0.7 ✗)(0.6 ✓), N = 4
COVERAGE_EXAMPLE = [(0.9, True), (0.8, True), (0.7, False), (0.6, True)]


def test_top_k_spec_example() -> None:
    answer = ["cat", "dog"]  # cat:0.9;dog:0.8
    assert top_k_correct(answer, ["dog"], k=1) is False
    assert top_k_correct(answer, ["dog"], k=5) is True


def test_top_k_matches_case_insensitively_with_white_space_trimmed() -> None:
    assert top_k_correct(["  Golden Retriever "], ["golden retriever"], k=1) is True
    assert top_k_correct(["DOG"], [" dog\t"], k=1) is True
    assert top_k_correct(["golden  retriever"], ["golden retriever"], k=1) is False


def test_top_k_leaves_out_images_with_an_empty_true_set() -> None:
    assert top_k_correct(["dog"], [], k=5) is None
    assert top_k_correct(["dog"], ["  "], k=5) is None


def test_top_k_abstention_is_wrong() -> None:
    assert top_k_correct([], ["dog"], k=5) is False


def test_top_k_only_looks_at_the_first_k() -> None:
    answer = ["a", "b", "c", "d", "e", "dog"]
    assert top_k_correct(answer, ["dog"], k=5) is False
    assert top_k_correct(answer, ["dog"], k=6) is True


def test_a_repeated_tag_takes_one_place_in_top_k() -> None:
    # `Cat` and `cat` are one tag (SPEC §2): dog is the fifth distinct tag, not the sixth.
    answer = ["Cat", "cat", "a", "b", "c", "dog"]
    assert top_k_correct(answer, ["dog"], k=5) is True
    assert top_k_correct(answer, ["dog"], k=4) is False


def test_true_tags_are_folded_like_answer_tags() -> None:
    assert top_k_correct(["strasse"], ["Straße"], k=1) is True
    assert top_k_correct(["ΣΊΣΥΦΟΣ"], ["σίσυφος"], k=1) is True


def test_top_k_rejects_k_below_one() -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        top_k_correct(["dog"], ["dog"], k=0)


def test_true_rank() -> None:
    assert true_rank(["cat", "Dog", "dog"], ["dog"]) == 2
    assert true_rank(["cat", "wolf"], ["dog", "Wolf "]) == 2
    assert true_rank(["cat"], ["dog"]) is None
    assert true_rank([], ["dog"]) is None
    assert true_rank(["dog"], []) is None
    assert true_rank(["Cat", "cat ", "CAT", "Dog"], ["dog"]) == 2  # a repeat takes no place


def test_normalization_is_the_protocols_tag_key() -> None:
    assert normalize_tag is tag_key
    assert normalize_tag("  Dog\n") == "dog"
    assert truth_set(["Dog", "dog ", "", " "]) == frozenset({"dog"})


def test_coverage_spec_example() -> None:
    assert coverage_at_precision(COVERAGE_EXAMPLE, n_images=4, precision=0.95) == 0.5
    assert coverage_at_precision(COVERAGE_EXAMPLE, n_images=4, precision=0.75) == 1.0


def test_coverage_compares_precision_exactly() -> None:
    # 55 right then 45 wrong: precision 55/100 is exactly 0.55 at m = 100, although
    # 0.55 * 100 > 55 in floating point.
    answers = [(1.0, True)] * 55 + [(0.5, False)] * 45
    assert 0.55 * 100 > 55
    assert coverage_at_precision(answers, n_images=100, precision=0.55) == 1.0
    assert coverage_at_precision(answers, n_images=100, precision=Fraction(55, 100)) == 1.0
    assert coverage_at_precision(answers, n_images=100, precision=0.56) == 98 / 100
    assert coverage_at_precision(answers, n_images=100, precision=0.95) == 57 / 100
    assert coverage_at_precision(answers, n_images=100, precision=1) == 55 / 100


def test_coverage_puts_incorrect_before_correct_on_equal_scores() -> None:
    # Listed correct first, but on a tie the wrong one ranks first: precision 0 then 1/2.
    answers = [(0.5, True), (0.5, False)]
    assert coverage_at_precision(answers, n_images=2, precision=0.5) == 1.0
    assert coverage_at_precision(answers, n_images=2, precision=0.6) == 0.0


def test_coverage_counts_abstentions_in_n() -> None:
    # Two answered and right, two with no answer: coverage 2/4 at any precision.
    assert coverage_at_precision([(0.2, True), (0.1, True)], n_images=4, precision=0.99) == 0.5


def test_coverage_is_zero_when_no_cutoff_is_precise_enough() -> None:
    assert coverage_at_precision([(0.9, False), (0.8, True)], n_images=2, precision=0.95) == 0.0
    assert coverage_at_precision([], n_images=3, precision=0.95) == 0.0


def test_coverage_is_none_without_images_with_a_true_set() -> None:
    assert coverage_at_precision([], n_images=0, precision=0.95) is None


@pytest.mark.parametrize("precision", [-0.1, 1.5, float("nan")])
def test_coverage_rejects_precision_outside_zero_one(precision: float) -> None:
    with pytest.raises(ValueError, match="precision must be within"):
        coverage_at_precision([], n_images=1, precision=precision)


def test_coverage_rejects_more_answers_than_images() -> None:
    with pytest.raises(ValueError, match="2 answers for 1 images"):
        coverage_at_precision([(0.5, True), (0.4, True)], n_images=1, precision=0.5)


def test_micro_ap_spec_examples() -> None:
    pairs = [(0.9, True), (0.8, False), (0.7, True)]
    assert micro_average_precision(pairs, n_true=3) == pytest.approx(0.5556, abs=5e-5)
    assert micro_average_precision(pairs, n_true=3) == pytest.approx(5 / 9)
    assert micro_average_precision([(0.5, True), (0.5, False)], n_true=1) == 0.5


def test_micro_ap_is_order_independent() -> None:
    assert micro_average_precision([(0.7, True), (0.9, True), (0.8, False)], n_true=3) == (
        pytest.approx(5 / 9)
    )


def test_micro_ap_edge_cases() -> None:
    assert micro_average_precision([], n_true=0) is None
    assert micro_average_precision([(0.3, False)], n_true=0) is None
    assert micro_average_precision([], n_true=2) == 0.0
    assert micro_average_precision([(0.3, True)], n_true=1) == 1.0


def test_micro_ap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2 correct pairs but only 1 true pairs"):
        micro_average_precision([(0.3, True), (0.2, True)], n_true=1)
    with pytest.raises(ValueError, match="score must be a finite number"):
        micro_average_precision([(float("nan"), True)], n_true=1)


def test_nearest_rank_percentiles_on_known_lists() -> None:
    values = [15.0, 20.0, 35.0, 40.0, 50.0]  # the classic nearest-rank example
    assert percentile(values, 5) == 15.0
    assert percentile(values, 30) == 20.0
    assert percentile(values, 40) == 20.0
    assert percentile(values, 50) == 35.0
    assert percentile(values, 100) == 50.0
    assert percentile(values, 0) == 15.0
    ten = [float(v) for v in range(10, 0, -1)]  # 10, 9, ..., 1 in any order
    assert percentile(ten, 50) == 5.0
    assert percentile(ten, 90) == 9.0
    assert percentile(ten, 99) == 10.0


def test_nearest_rank_uses_the_percent_as_written() -> None:
    # 0.07 * 100 is 7.000000000000001 in floating point; the 7th of 100 is still right.
    assert percentile(range(1, 101), 7) == 7
    assert percentile(range(1, 101), 0.07 * 100) == 8  # that float is above 7


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="^percentile of no values$"):
        percentile([], 50)
    with pytest.raises(ValueError, match="within \\[0, 100\\]"):
        percentile([1.0], 101)
    for percent in (float("nan"), -0.5):
        with pytest.raises(ValueError, match="within \\[0, 100\\]"):
            percentile([1.0], percent)


def test_coverage_at_precision_zero_takes_every_answer() -> None:
    answers = [(0.9, False), (0.5, False)]
    assert coverage_at_precision(answers, n_images=4, precision=0) == 0.5
    with pytest.raises(ValueError, match="precision"):
        coverage_at_precision(answers, n_images=4, precision=float("nan"))


def test_latency_summary() -> None:
    summary = latency_summary([3.0, 1.0, 2.0, 4.0])
    assert summary == {"p50": 2.0, "p90": 4.0, "p99": 4.0, "max": 4.0, "mean": 2.5}
    hundred = latency_summary(float(v) for v in range(100, 0, -1))
    assert hundred == {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0, "mean": 50.5}
    assert latency_summary([]) == dict.fromkeys(["p50", "p90", "p99", "max", "mean"], None)

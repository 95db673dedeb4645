"""Each prediction-file format of SPEC §13 accepted and scored exactly, on examples
checked by hand (the figures in the comments)."""

import io

import numpy as np
import pytest

from gateway.offline.answers import Catalogue
from gateway.offline.scoring import ImageResult
from gateway.offline.submission import evaluate
from tests.builders import descriptors_file, matching_file, text_file

LABELS = ["n01", "n02", "n03", "n04", "n05", "n06", "n07"]
ILSVRC = Catalogue(image_ids=["a", "b", "c", "d"], labels=LABELS)
ILSVRC_TRUTH = [["n01"], ["n03"], ["n07"], ["n02"]]


def scored(stream, *, format, catalogue, truth, k=10):  # type: ignore[no-untyped-def]
    results: list[ImageResult] = []
    scores = evaluate(
        stream, format=format, catalogue=catalogue, truth=truth, k=k, on_results=results.extend
    )
    return scores, results


@pytest.mark.parametrize(
    "lines",
    [
        ["n01 n02 n03 n04 n05", "n02 n04 n05 n06 n03", "n01 n02 n03 n04 n05"],
        ["1 2 3 4 5", "2 4 5 6 3", "1 2 3 4 5"],
        ["N01 2 n03 4 5", " 2\tn04 5 n06 3 ", "1 n02 3 n04 5"],  # mixed, case, white space
    ],
    ids=["labels", "indices", "mixed"],
)
def test_ilsvrc_top5_with_labels_and_with_indices(lines: list[str]) -> None:
    scores, results = scored(
        text_file(lines), format="ilsvrc", catalogue=ILSVRC, truth=ILSVRC_TRUTH
    )
    # a: n01 first (top-1); b: n03 fifth (top-5); c: n07 absent; d: no line -> missed.
    assert scores["top1"] == 1 / 4
    assert scores["top5"] == 2 / 4
    assert [r.true_rank for r in results] == [1, 5, None, None]
    assert [r.outcome for r in results] == ["ok", "ok", "ok", "missed"]
    assert scores["outcomes"]["missed"] == 1
    assert [tag for tag, _ in results[1].tags] == ["n02", "n04", "n05", "n06", "n03"]
    # An ILSVRC file has no scores: no coverage, no µAP.
    assert scores["micro_ap"] is None and scores["coverage_at_95"] is None


def test_ilsvrc_blank_line_is_an_abstention_and_a_repeat_takes_one_place() -> None:
    lines = ["n02 n02 n01", "", "n07"]
    scores, results = scored(
        text_file(lines), format="ilsvrc", catalogue=ILSVRC, truth=ILSVRC_TRUTH
    )
    assert [r.true_rank for r in results] == [2, None, 1, None]
    assert [r.outcome for r in results] == ["ok", "ok", "ok", "missed"]
    assert results[1].tags == []
    assert scores["top1"] == 1 / 4 and scores["top5"] == 2 / 4


def test_recoghub_tsv_scores_like_a_run() -> None:
    catalogue = Catalogue(image_ids=["a", "b", "c"])
    truth = [["dog"], ["cat"], ["bird"]]
    lines = ["a\tcat:0.9;dog:0.8", "b\t", ""]  # c left out
    scores, results = scored(
        text_file(lines), format="recoghub-tsv", catalogue=catalogue, truth=truth
    )
    # SPEC §6: truth dog, answer cat:0.9;dog:0.8 -> top-1 wrong, top-5 right.
    assert results == [
        ImageResult("a", "ok", [("cat", 0.9), ("dog", 0.8)], 2),
        ImageResult("b", "ok", [], None),
        ImageResult("c", "missed", [], None),
    ]
    assert scores["top1"] == 0.0
    assert scores["top5"] == 1 / 3
    # Pairs (0.9 ✗)(0.8 ✓), N_gt = 3: µAP = (1/2) / 3.
    assert scores["micro_ap"] == pytest.approx(1 / 6)
    assert scores["coverage_at_95"] == 0.0


def test_recoghub_tsv_ranks_as_the_grammar_does() -> None:
    catalogue = Catalogue(image_ids=["a", "b"])
    lines = ["b\tx:0.5;Dog:0.5;dog:0.9", "a\tdog:0.1;cat:0.7"]
    _, results = scored(
        text_file(lines), format="recoghub-tsv", catalogue=catalogue, truth=[["dog"], ["x"]]
    )
    # a ranked by score; b's repeat keeps its best entry, equal scores keep file order.
    assert results[0].tags == [("cat", 0.7), ("dog", 0.1)]
    assert results[1].tags == [("dog", 0.9), ("x", 0.5)]
    assert [r.true_rank for r in results] == [2, 2]


MATCHING = Catalogue(image_ids=["q1", "q2", "q3"], reference_ids=["r1", "r2", "r3"])


def test_isc_matching_micro_ap_spec_example() -> None:
    truth = [["r1"], ["r2"], ["r3"]]
    rows = [("q1", "r1", 0.9), ("q2", "r1", 0.8), ("q2", "r2", 0.7)]
    scores, results = scored(
        matching_file(rows), format="isc-matching", catalogue=MATCHING, truth=truth
    )
    # SPEC §6: [(0.9,T),(0.8,F),(0.7,T)], N_gt = 3 -> 0.5556.
    assert scores["micro_ap"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert round(scores["micro_ap"], 4) == 0.5556
    assert [r.outcome for r in results] == ["ok", "ok", "missed"]
    assert results[1] == ImageResult("q2", "ok", [("r1", 0.8), ("r2", 0.7)], 2)


@pytest.mark.parametrize("first", ["r1", "r2"])
def test_isc_matching_micro_ap_with_ties(first: str) -> None:
    truth = [["r1"], [], []]
    other = "r2" if first == "r1" else "r1"
    rows = [("q1", first, "0.5"), ("q1", other, "5e-1")]
    scores, results = scored(
        matching_file(rows), format="isc-matching", catalogue=MATCHING, truth=truth
    )
    # SPEC §6: [(0.5,T),(0.5,F)], N_gt = 1 -> 0.5 whatever the file's order (incorrect
    # before correct); the image's own ranking keeps the file's order on a tie (§2).
    assert scores["micro_ap"] == 0.5
    assert [tag for tag, _ in results[0].tags] == [first, other]
    assert results[0].true_rank == (1 if first == "r1" else 2)


def test_isc_matching_accepts_a_bom_blank_lines_and_crlf() -> None:
    raw = "\ufeffquery_id, reference_id ,score\r\n\r\nq3,r3,1\r\n".encode()
    scores, results = scored(
        io.BytesIO(raw), format="isc-matching", catalogue=MATCHING, truth=[[], [], ["r3"]]
    )
    assert scores["micro_ap"] == 1.0
    assert results[2] == ImageResult("q3", "ok", [("r3", 1.0)], 1)


DESCRIPTORS = Catalogue(image_ids=["q1", "q2", "q3"], reference_ids=["r1", "r2", "r3", "r4"])


@pytest.mark.parametrize("container", ["npz", "hdf5"])
def test_isc_descriptors_hand_example(container: str) -> None:
    arrays = {
        "query_ids": ["q2", "q1"],
        "query": [[10.0, 0.0], [0.0, 0.0]],
        "reference_ids": ["r4", "r1", "r2", "r3"],
        "reference": [[12.0, 0.0], [1.0, 0.0], [0.0, 2.0], [10.0, 3.0]],
    }
    arrays["query"] = np.asarray(arrays["query"], dtype="float32")
    arrays["reference"] = np.asarray(arrays["reference"], dtype="float32")
    truth = [["r2"], ["r4"], ["r1"]]
    scores, results = scored(
        descriptors_file(arrays, container=container),
        format="isc-descriptors",
        catalogue=DESCRIPTORS,
        truth=truth,
        k=2,
    )
    # q1 (0,0): r1 at 1, r2 at 2; q2 (10,0): r4 at 2, r3 at 3; q3 not in the file.
    assert results == [
        ImageResult("q1", "ok", [("r1", -1.0), ("r2", -2.0)], 2),
        ImageResult("q2", "ok", [("r4", -2.0), ("r3", -3.0)], 1),
        ImageResult("q3", "missed", [], None),
    ]
    # Pairs (-1 ✗)(-2 ✓)(-2 ✓)(-3 ✗), N_gt = 3: (1/2 + 2/3) / 3 = 7/18.
    assert scores["micro_ap"] == pytest.approx(7 / 18)
    assert scores["top1"] == 1 / 3 and scores["top5"] == 2 / 3


def test_tags_and_truth_spelled_differently_are_one_tag() -> None:
    catalogue = Catalogue(image_ids=["a", "b", "c"])
    truth = [[" dog"], ["straße"], ["Cat", "CAT "]]  # c's true set is one tag
    lines = ["a\tDog:0.9", "b\tx:0.9;STRASSE:0.5", "c\tcat:0.2;DOG:0.1"]
    scores, results = scored(
        text_file(lines), format="recoghub-tsv", catalogue=catalogue, truth=truth
    )
    assert [r.true_rank for r in results] == [1, 2, 1]
    # N_gt = 3; pairs (0.9 ✓)(0.9 ✗)(0.5 ✓)(0.2 ✓)(0.1 ✗): ties put ✗ first.
    assert scores["micro_ap"] == pytest.approx((1 / 2 + 2 / 3 + 3 / 4) / 3)
    assert scores["top1"] == 2 / 3


@pytest.mark.parametrize("container", ["npz", "hdf5"])
def test_descriptors_from_a_spooled_upload_with_progress(container: str) -> None:
    import tempfile

    from gateway.offline.submission import read_answers

    rng = np.random.default_rng(3)
    arrays = {
        "query_ids": ["q1", "q2", "q3"],
        "query": rng.normal(size=(3, 8)).astype(np.float32),
        "reference_ids": ["r1", "r2", "r3", "r4"],
        "reference": rng.normal(size=(4, 8)).astype(np.float32),
    }
    stages: list[tuple[str, int, int]] = []
    # What a multipart upload hands the route: a spooled file, here rolled over to disk.
    with tempfile.SpooledTemporaryFile(max_size=64) as upload:
        upload.write(descriptors_file(arrays, container=container).getvalue())
        upload.seek(0)
        answers = read_answers(
            upload,  # type: ignore[arg-type]
            format="isc-descriptors",
            catalogue=DESCRIPTORS,
            k=3,
            progress=lambda *stage: stages.append(stage),
        )
    assert answers.answered.tolist() == [True, True, True]
    assert np.diff(answers.starts).tolist() == [3, 3, 3]
    assert stages[-1] == ("search", 3, 3)

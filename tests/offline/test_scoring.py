"""A file's scores equal those of `ServiceScorer` fed its per-image results, whatever
the spellings of its tags and true tags (both ways of numbering tags are reached)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.offline.answers import Catalogue
from gateway.offline.scoring import ImageResult
from gateway.offline.submission import evaluate
from gateway.protocol.result_string import format_result
from gateway.scoring.metrics import ServiceScorer, true_rank
from tests.builders import text_file

TAGS = st.sampled_from(["dog", "Dog", "DOG", "cat", "x", "y", "Straße", "STRASSE", "R1", "r1"])
LINE = st.none() | st.lists(st.tuples(TAGS, st.sampled_from([0.1, 0.5, 0.5, 0.9])), max_size=5)
IMAGE = st.tuples(LINE, st.lists(TAGS, max_size=2))


@settings(max_examples=300)
@given(st.lists(IMAGE, min_size=1, max_size=12))
def test_file_scores_equal_service_scorer(
    images: list[tuple[list[tuple[str, float]] | None, list[str]]],
) -> None:
    ids = [f"i{n}" for n in range(len(images))]
    lines = [
        f"{image_id}\t{format_result(entries)}"
        for image_id, (entries, _) in zip(ids, images, strict=True)
        if entries is not None
    ]
    truth = [true for _, true in images]
    results: list[ImageResult] = []
    scores = evaluate(
        text_file(lines),
        format="recoghub-tsv",
        catalogue=Catalogue(image_ids=ids),
        truth=truth,
        on_results=results.extend,
    )
    scorer = ServiceScorer()
    for result, true in zip(results, truth, strict=True):
        scorer.add(outcome=result.outcome, tags=result.tags, truth=true, latency_ms=None)
        if result.outcome == "ok":
            assert result.true_rank == true_rank([tag for tag, _ in result.tags], true)
    assert scores == scorer.result(elapsed_s=None)

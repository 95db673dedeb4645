"""One ranking of tags (SPEC §2, §6): `gateway.scoring.ranking` is the only place that
counts an answer's places, and `gateway.protocol.result_string.tag_key` the only place
that folds a tag; a second definition anywhere in gateway/ or cmdline_tool/ fails here."""

import ast
from pathlib import Path

from gateway.scoring.ranking import distinct, place_of_truth, true_rank

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "gateway"


def _trees() -> list[tuple[Path, ast.Module]]:
    """Every module of the hub and of the team CLI (which scores `recog --labels`)."""
    paths = [*GATEWAY.rglob("*.py"), *(ROOT / "cmdline_tool").rglob("*.py")]
    return [(path, ast.parse(path.read_text(), str(path))) for path in paths]


def test_only_the_protocol_folds_tags() -> None:
    folding = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "casefold"
    ]
    assert [place.partition(":")[0] for place in folding] == ["gateway/protocol/result_string.py"]


def test_only_the_ranking_module_counts_places() -> None:
    # A function that ranks tags or finds the true one's place is named so; it lives in
    # ranking.py (the protocol's `rank` orders a parsed answer, nothing else).
    defined = [
        f"{path.relative_to(ROOT)}:{node.name}"
        for path, tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and ("true_rank" in node.name or "rank_of" in node.name or node.name == "truth_set")
    ]
    assert sorted(defined) == [
        "gateway/scoring/ranking.py:true_rank",
        "gateway/scoring/ranking.py:truth_set",
    ]


def test_distinct_keeps_each_tag_at_its_best_place() -> None:
    entries = [("Cat", 0.9), ("cat ", 0.8), ("Dog", 0.5), ("CAT", 0.4), ("Straße", 0.1)]
    assert list(distinct(entries)) == [("cat", 0.9), ("dog", 0.5), ("strasse", 0.1)]


def test_place_of_truth_within() -> None:
    keys = ["a", "b", "c", "d", "e", "f"]
    assert place_of_truth(keys, frozenset({"f"})) == 6
    assert place_of_truth(keys, frozenset({"f"}), within=5) is None
    assert place_of_truth(keys, frozenset({"e"}), within=5) == 5
    assert true_rank(["Cat", "cat ", "CAT", "Dog"], ["dog"]) == 2

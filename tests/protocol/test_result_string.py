"""The result-string grammar of SPEC §2, rule by rule, plus properties over any input."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocol.result_string import (
    MAX_RESULT_BYTES,
    ResultStringError,
    ResultTooLargeError,
    Tag,
    format_result,
    parse_result,
    parse_score,
    rank,
    tag_key,
)


def pairs(body: str | bytes) -> list[tuple[str, float]]:
    return [(t.tag, t.score) for t in parse_result(body)]


def error_of(body: str | bytes) -> ResultStringError:
    with pytest.raises(ResultStringError) as caught:
        parse_result(body)
    return caught.value


# --- well-formed answers ---------------------------------------------------------------


def test_the_spec_example_parses_in_order() -> None:
    assert pairs("tag1:0.95;tag2:0.32;tag3:0.05;tag4:0.04;tag5:0.01") == [
        ("tag1", 0.95),
        ("tag2", 0.32),
        ("tag3", 0.05),
        ("tag4", 0.04),
        ("tag5", 0.01),
    ]


def test_parse_returns_tag_objects() -> None:
    assert parse_result("cat:0.9") == [Tag("cat", 0.9)]


@pytest.mark.parametrize(
    "body",
    [
        "cat:0.9;dog:0.1;",  # one trailing ';'
        "  cat:0.9;dog:0.1  ",  # white space around the body
        "\ncat:0.9;dog:0.1;\r\n",  # a newline from print() or echo
        " cat : 0.9 ; dog:0.1 ; ",  # white space around entries, tags and scores
        "\tcat:\t0.9;\tdog :0.1",
    ],
)
def test_trailing_separator_and_white_space_are_allowed(body: str) -> None:
    assert pairs(body) == [("cat", 0.9), ("dog", 0.1)]


def test_bytes_and_text_bodies_parse_alike() -> None:
    assert parse_result("chien:0.7;café:0.3".encode()) == parse_result("chien:0.7;café:0.3")


@pytest.mark.parametrize("body", ["", "   ", "\n", " \t\r\n ", b"", b"  \n"])
def test_empty_or_all_white_body_is_an_abstention(body: str | bytes) -> None:
    assert parse_result(body) == []


@pytest.mark.parametrize("body", [";", ";;", " ; ", "\n;\n", "; ;\t;", b";;;", ";\u00a0;"])
def test_a_body_of_only_white_space_and_separators_is_an_abstention(body: str | bytes) -> None:
    assert parse_result(body) == []


def test_entry_is_split_at_the_last_colon() -> None:
    assert pairs("http://x/y:0.5") == [("http://x/y", 0.5)]
    assert pairs("a:b:c:0.25") == [("a:b:c", 0.25)]


def test_tag_may_contain_spaces_and_is_stripped() -> None:
    assert pairs("  golden retriever  :0.8") == [("golden retriever", 0.8)]


@pytest.mark.parametrize(
    ("score_text", "score"),
    [
        ("1", 1.0),
        ("0", 0.0),
        ("0.5", 0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("+0.5", 0.5),
        ("-0.5", -0.5),
        ("1e-3", 0.001),
        ("1E3", 1000.0),
        ("2.5e+2", 250.0),
        ("007", 7.0),
    ],
)
def test_scores_are_finite_decimal_floats(score_text: str, score: float) -> None:
    assert pairs(f"cat:{score_text}") == [("cat", score)]


# --- ranking ---------------------------------------------------------------------------


def test_ranking_is_by_score_descending() -> None:
    assert pairs("a:0.1;b:0.9;c:0.5") == [("b", 0.9), ("c", 0.5), ("a", 0.1)]


def test_equal_scores_keep_the_teams_order() -> None:
    assert [t.tag for t in parse_result("z:0.5;a:0.5;m:0.5;top:0.7")] == ["top", "z", "a", "m"]


def test_a_repeated_tag_keeps_its_best_ranked_entry_only() -> None:
    assert pairs("dog:0.2;cat:0.5;dog:0.9") == [("dog", 0.9), ("cat", 0.5)]
    # On a tie the first-listed entry is the best ranked one.
    assert pairs("dog:0.5;cat:0.5;dog:0.5") == [("dog", 0.5), ("cat", 0.5)]


def test_tags_are_compared_after_stripping() -> None:
    assert pairs("dog:0.9; dog :0.4") == [("dog", 0.9)]


def test_tags_are_compared_after_case_folding_and_keep_the_best_entrys_spelling() -> None:
    assert pairs("cat:0.5;Cat:0.9;dog:0.7;CAT:0.1") == [("Cat", 0.9), ("dog", 0.7)]
    # casefold(), not lower(): the German sharp s folds to "ss".
    assert pairs("STRASSE:0.4;Straße:0.6") == [("Straße", 0.6)]
    # On a tie the first-listed spelling is the best ranked one.
    assert pairs("Dog:0.5;dOG:0.5") == [("Dog", 0.5)]


def test_cat_and_cat_take_one_top5_place() -> None:
    ranked = parse_result("Cat:0.9;cat:0.8;CAT:0.7;a:0.6;b:0.5;c:0.4;dog:0.3")
    assert [t.tag for t in ranked][:5] == ["Cat", "a", "b", "c", "dog"]


def test_tag_key_trims_and_folds() -> None:
    assert tag_key("  Golden Retriever\n") == "golden retriever"
    assert tag_key("Straße") == tag_key("STRASSE") == "strasse"
    assert tag_key("ΣΊΣΥΦΟΣ") == tag_key("σίσυφος")


def test_rank_orders_tag_objects_like_the_parser() -> None:
    tags = [Tag("a", 0.1), Tag("b", 0.3), Tag("a", 0.3), Tag("c", 0.3)]
    assert rank(tags) == [Tag("b", 0.3), Tag("a", 0.3), Tag("c", 0.3)]


# --- format errors ---------------------------------------------------------------------


def test_error_names_entry_text_and_problem_like_the_spec() -> None:
    error = error_of("cat:0.9;bird:0.2;dog")
    assert str(error) == 'entry 3 "dog" has no ":score"'
    assert (error.entry, error.text) == (3, "dog")
    assert "score" in error.expected


@pytest.mark.parametrize(
    ("body", "entry"),
    [
        ("a:1;;b:2", 2),
        (";a:1", 1),
        ("a:1; ;b:2", 2),
        ("a:1;;", 2),  # only one trailing ';' is allowed
        (";;a:1", 1),
    ],
)
def test_an_empty_entry_is_an_error(body: str, entry: int) -> None:
    error = error_of(body)
    assert error.entry == entry
    assert str(error) == f"entry {entry} is empty"


@pytest.mark.parametrize("body", [":0.5", "  :0.5", "cat:0.9; :0.1"])
def test_an_empty_tag_is_an_error(body: str) -> None:
    error = error_of(body)
    assert "empty tag" in str(error)
    assert error.entry == body.count(";") + 1


@pytest.mark.parametrize(
    "score_text",
    [
        "",
        "   ",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "1_0",
        "١",  # Arabic-Indic digit one
        "٠.٥",
        "１",  # full-width digit one
        "0x1p-2",
        "high",
        "0.5.5",
        "1e",
        "e3",
        "0. 5",
        "50%",
        "--1",
    ],
)
def test_a_score_that_is_not_a_finite_decimal_is_an_error(score_text: str) -> None:
    error = error_of(f"cat:0.9;dog:{score_text}")
    assert error.entry == 2
    assert str(error).startswith('entry 2 "dog:')
    assert "finite decimal" in error.expected


def test_a_score_that_overflows_to_infinity_is_an_error() -> None:
    error = error_of("cat:1e999")
    assert str(error) == 'entry 1 "cat:1e999" has a score out of range'


def test_offending_text_is_truncated() -> None:
    long_tag = "x" * 500
    error = error_of(f"cat:0.9;{long_tag}")
    assert error.entry == 2
    assert error.text.startswith("xxxx")
    assert len(error.text) < 100
    assert len(str(error)) < 150


def test_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_result("dog")


# --- size and encoding -----------------------------------------------------------------


def test_a_body_of_exactly_64_kib_is_accepted() -> None:
    body = b"cat:0.5" + b" " * (MAX_RESULT_BYTES - 7)
    assert len(body) == MAX_RESULT_BYTES
    assert pairs(body) == [("cat", 0.5)]


@pytest.mark.parametrize("padding", [b" ", b"x"])
def test_a_body_over_64_kib_is_too_large(padding: bytes) -> None:
    body = b"cat:0.5;" + padding * MAX_RESULT_BYTES
    with pytest.raises(ResultTooLargeError) as caught:
        parse_result(body)
    assert str(len(body)) in str(caught.value)
    assert caught.value.entry is None


def test_a_text_body_is_measured_in_utf8_bytes() -> None:
    # 22,000 three-byte characters: under 64 Ki characters, over 64 KiB.
    with pytest.raises(ResultTooLargeError):
        parse_result("€" * 22_000 + ":0.5")


def test_too_large_is_a_result_string_error() -> None:
    assert issubclass(ResultTooLargeError, ResultStringError)


@pytest.mark.parametrize("body", [b"cat:0.9;\xff\xfe:0.1", b"\xc3(:0.5", b"cat:0.\xe2\x82"])
def test_invalid_utf8_is_an_error(body: bytes) -> None:
    error = error_of(body)
    assert not isinstance(error, ResultTooLargeError)
    assert "UTF-8" in str(error)
    assert error.entry is None


# --- format_result ---------------------------------------------------------------------


def test_format_result_writes_the_grammar() -> None:
    assert format_result([("cat", 0.9), Tag("dog", 0.1)]) == "cat:0.9;dog:0.1"
    assert format_result([]) == ""


@pytest.mark.parametrize("tag", ["", "a;b", " cat", "cat\n"])
def test_format_result_refuses_tags_the_grammar_cannot_carry(tag: str) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        format_result([(tag, 0.5)])


@pytest.mark.parametrize("score", [math.nan, math.inf, -math.inf])
def test_format_result_refuses_scores_that_are_not_finite(score: float) -> None:
    with pytest.raises(ValueError, match="not finite"):
        format_result([("cat", score)])


# --- properties ------------------------------------------------------------------------

# Tags the grammar can carry: no ';', no surrounding white space, not empty; any other
# character (':' and inner spaces included) is fair game. Surrogates cannot be UTF-8.
writable_tags = (
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters=";"), min_size=1)
    .map(str.strip)
    .filter(bool)
)
finite_scores = st.floats(allow_nan=False, allow_infinity=False)
tag_lists = st.lists(st.builds(Tag, writable_tags, finite_scores), max_size=20)


@given(tag_lists)
def test_format_then_parse_gives_the_ranked_input(tags: list[Tag]) -> None:
    assert parse_result(format_result(tags).encode()) == rank(tags)


@given(st.lists(st.tuples(writable_tags, finite_scores), max_size=20))
def test_format_then_parse_takes_plain_pairs(items: list[tuple[str, float]]) -> None:
    assert parse_result(format_result(items)) == rank(Tag(t, s) for t, s in items)


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_a_result_string_error(body: bytes) -> None:
    try:
        tags = parse_result(body)
    except ResultStringError:
        return
    assert all(t.tag == t.tag.strip() and t.tag and math.isfinite(t.score) for t in tags)


# Bytes built from the grammar's own alphabet reach far more branches than random bytes.
grammar_bytes = st.lists(
    st.sampled_from([b"a", b"b", b" ", b":", b";", b"0", b"1", b".", b"e", b"-", b"\n", b"\xff"]),
    max_size=40,
).map(b"".join)


@given(grammar_bytes)
def test_grammar_like_bytes_parse_or_raise_a_result_string_error(body: bytes) -> None:
    try:
        tags = parse_result(body)
    except ResultStringError as error:
        assert str(error)
        return
    keys = [tag_key(t.tag) for t in tags]
    assert keys == list(dict.fromkeys(keys))
    assert [t.score for t in tags] == sorted((t.score for t in tags), reverse=True)


# Tags that often fold together, so that case repeats are common.
folding_tags = st.sampled_from(["cat", "Cat", "CAT", "dog", "Dog", "Straße", "STRASSE", "ß"])


@given(st.lists(st.builds(Tag, folding_tags, st.sampled_from([0.0, 0.5, 1.0])), max_size=12))
def test_rank_keeps_the_best_ranked_entry_of_each_folded_tag(tags: list[Tag]) -> None:
    # Brute force: for each key, the entry with the highest score, the first listed on ties.
    best: dict[str, tuple[int, Tag]] = {}
    for index, item in enumerate(tags):
        key = tag_key(item.tag)
        if key not in best or item.score > best[key][1].score:
            best[key] = (index, item)
    expected = sorted(best.values(), key=lambda e: (-e[1].score, e[0]))
    assert rank(tags) == [item for _, item in expected]


@given(st.text(st.sampled_from([";", " ", "\t", "\n", "\u3000"]), max_size=20))
def test_only_white_space_and_separators_is_always_an_abstention(body: str) -> None:
    assert parse_result(body) == []
    assert parse_result(body.encode()) == []


# --- what an error carries (SPEC §2: entry, offending text truncated, what was expected) --


@pytest.mark.parametrize(
    ("body", "entry", "text", "expected"),
    [
        ("cat:0.9;dog", 2, "dog", '"tag:score"'),
        ("a:1;;b:2", 2, "", '"tag:score"'),
        ("cat:0.9; :0.1", 2, ":0.1", "a non-empty tag before the last ':'"),
        ("cat:high", 1, "cat:high", "a finite decimal score"),
        ("cat:1e999", 1, "cat:1e999", "a finite decimal score"),
    ],
)
def test_an_entry_error_carries_its_entry_text_and_expectation(
    body: str, entry: int, text: str, expected: str
) -> None:
    error = error_of(body)
    assert (error.entry, error.text, error.expected) == (entry, text, expected)


def test_a_bad_score_is_quoted_in_the_message() -> None:
    assert str(error_of("cat:0.9;dog: high ")) == 'entry 2 "dog: high" has score "high"'
    assert str(error_of(":0.5")) == 'entry 1 ":0.5" has an empty tag'


def test_offending_text_up_to_40_characters_is_shown_whole() -> None:
    exact = "x" * 40
    assert error_of(f"a:1;{exact}").text == exact
    longer = error_of(f"a:1;{exact}y")
    assert longer.text == "x" * 39 + "…"
    assert str(longer) == f'entry 2 "{longer.text}" has no ":score"'


def test_a_too_large_body_says_the_limit() -> None:
    error = error_of(b"x" * (MAX_RESULT_BYTES + 1))
    assert (error.entry, error.text) == (None, "")
    assert error.expected == "at most 65536 bytes"
    assert str(error) == "answer is 65537 bytes, over the 65536-byte limit"


def test_invalid_utf8_shows_the_bytes_from_the_first_bad_one() -> None:
    error = error_of(b"cat:0.5;" + bytes(range(0xF8, 0x100)) + b"tail")
    assert str(error) == "answer is not valid UTF-8 (byte 8)"
    # Eight bytes from the offending one, in hex.
    assert (error.text, error.expected) == ("f8f9fafbfcfdfeff", "UTF-8 text")


def test_format_result_writes_tag_objects_and_pairs_alike() -> None:
    assert format_result([Tag("cat", 0.5), ("dog", 1)]) == "cat:0.5;dog:1.0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" 0.5 ", 0.5),
        ("1e-3", 1e-3),
        ("-2", -2.0),
        (".5", 0.5),
        ("nan", None),
        ("inf", None),
        ("1e999", None),
        ("0,5", None),
        ("", None),
        ("١", None),
        ("1_0", None),
    ],
)
def test_parse_score_takes_the_scores_the_grammar_takes(text: str, expected: float | None) -> None:
    assert parse_score(text) == expected
    if expected is None:  # the grammar refuses the same text in a result string
        with pytest.raises(ResultStringError):
            parse_result(f"cat:{text}")

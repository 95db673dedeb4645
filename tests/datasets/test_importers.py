"""The format readers on their own: records, truth and problems with their line numbers."""

import io
from pathlib import Path

import pytest

from gateway.datasets.importers import (
    SourceItem,
    TsvColumns,
    max_line_bytes,
    open_image_tree,
    read_clickture,
    read_folder,
    read_matching,
    read_truth_csv,
    read_tsv,
)
from tests.datasets.sources import (
    b64,
    distinct_jpeg,
    distinct_png,
    folder_tree,
    matching_source,
    tar_of,
    zip_of,
)

LIMIT = 1024 * 1024


def lines(*rows: str) -> io.BytesIO:
    return io.BytesIO("".join(r + "\n" for r in rows).encode())


def problems(items: list[SourceItem]) -> list[tuple[int, str]]:
    return [(i.line, i.problem or "") for i in items if i.problem is not None]


def test_clickture_reads_label_key_and_image_of_every_line() -> None:
    image = distinct_jpeg(1)
    source = io.BytesIO(
        b"\xef\xbb\xbf"  # a BOM is not part of the first label
        + f"beagle\tdog-1\t{b64(image)}\r\n\n".encode()
        + f" pug \t dog-2 \t{b64(image).rstrip('=')}".encode()  # no padding, no newline
    )
    items = list(read_clickture(source, max_image_bytes=LIMIT))
    assert [(i.line, i.record) for i in items] == [
        (1, ("dog-1", ["beagle"], image)),
        (3, ("dog-2", ["pug"], image)),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("beagle\tdog-1", "expected 3 tab-separated columns (label, key, base64 image), found 2"),
        ("beagle\tdog-1\tnot base64!", "column 3 is not valid base64"),
        ("beagle\tdog-1\t", "column 3 is empty, expected base64 image data"),
        ("beagle\t \tAAAA", "column 2 (key) is empty"),
        ("\tdog-1\tAAAA", "column 1 (label) is empty"),
    ],
)
def test_clickture_reports_a_bad_line_with_its_number_and_reads_on(line: str, reason: str) -> None:
    good = f"pug\tdog-0\t{b64(distinct_jpeg(0))}"
    items = list(read_clickture(lines(good, line, good), max_image_bytes=LIMIT))
    assert problems(items) == [(2, reason)]
    assert [i.line for i in items if i.record] == [1, 3]


def test_an_overlong_line_is_a_problem_and_the_next_line_still_reads() -> None:
    limit = 1000
    huge = "x\tbig\t" + "A" * (max_line_bytes(limit) + 10)
    good = f"pug\tdog-0\t{b64(distinct_png(0))}"
    items = list(read_clickture(lines(huge, good), max_image_bytes=limit))
    assert len(problems(items)) == 1
    line, reason = problems(items)[0]
    assert line == 1 and "the image is too large" in reason
    assert [i.line for i in items if i.record] == [2]


def test_tsv_reads_mapped_columns_with_several_labels_and_a_header() -> None:
    image = distinct_png(3)
    source = lines(
        "id\tfirst\tdata\tsecond",
        f"k1\tm.01|m.02\t{b64(image)}\tm.03",
        f"k2\tm.04\t{b64(image)}\t",
    )
    columns = TsvColumns(key=0, labels=(1, 3), image=2, label_separator="|", header=True)
    items = list(read_tsv(source, columns=columns, max_image_bytes=LIMIT))
    assert [(i.line, i.record) for i in items] == [
        (2, ("k1", ["m.01", "m.02", "m.03"], image)),
        (3, ("k2", ["m.04"], image)),
    ]


def test_tsv_reports_missing_columns_and_empty_labels() -> None:
    data = b64(distinct_png(3))
    source = lines(f"x\tk1\t{data}\tlabel", "x\tk2", f"x\tk3\t{data}\t ")
    columns = TsvColumns(key=1, labels=(3,), image=2)
    items = list(read_tsv(source, columns=columns, max_image_bytes=LIMIT))
    assert problems(items) == [
        (2, "has 2 tab-separated columns, expected at least 4"),
        (3, "empty label (column 4)"),
    ]


def test_tsv_names_the_column_of_bad_base64() -> None:
    columns = TsvColumns(key=0, labels=(1,), image=2)
    items = list(read_tsv(lines("k\tl\t%%%"), columns=columns, max_image_bytes=LIMIT))
    assert problems(items) == [(1, "column 3 (image, index 2) is not valid base64")]


def folder_records(source: Path, limit: int = LIMIT) -> list[SourceItem]:
    with open_image_tree(source) as tree:
        return list(read_folder(tree, max_image_bytes=limit))


def test_folder_labels_are_the_folder_names(tmp_path: Path) -> None:
    root = folder_tree(tmp_path / "root", {"cat": 2, "dog": 1})
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "dog" / ".hidden.jpg").write_bytes(b"ignored")
    items = folder_records(root)
    assert [(i.record.key, i.record.truth) for i in items if i.record] == [
        ("cat/0.png", ["cat"]),
        ("cat/1.jpg", ["cat"]),
        ("dog/0.png", ["dog"]),
    ]
    assert (root / "cat" / "1.jpg").read_bytes() == items[1].record.data


def test_folder_image_outside_a_label_folder_is_a_problem(tmp_path: Path) -> None:
    root = folder_tree(tmp_path / "root", {"cat": 1})
    (root / "stray.png").write_bytes(distinct_png(9))
    assert problems(folder_records(root)) == [(1, "is not inside a <label>/ folder")]


def test_folder_file_over_the_size_limit_is_a_problem(tmp_path: Path) -> None:
    root = folder_tree(tmp_path / "root", {"cat": 1})
    (root / "cat" / "big.png").write_bytes(b"\0" * 2000)
    [(line, reason)] = problems(folder_records(root, limit=1500))
    assert reason == (
        "image is 2.0 kB, over the hub's limit of 1.5 kB "
        "(RECOGHUB_MAX_IMAGE_BYTES=1500, set by the organizer)"
    )


@pytest.mark.parametrize("archive", ["zip", "tar.gz", "tar"])
def test_zip_and_tar_archives_read_like_the_folder(tmp_path: Path, archive: str) -> None:
    root = folder_tree(tmp_path / "root", {"cat": 2, "dog": 2})
    out = tmp_path / f"upload.{archive}"
    # Archives of a folder usually hold it under its own name: the label is still the
    # folder right above each image.
    if archive == "zip":
        zip_of(root, out, prefix="root/")
    else:
        tar_of(root, out, mode="w:gz" if archive == "tar.gz" else "w", prefix="root/")
    expected = {(i.record.key, tuple(i.record.truth), i.record.data) for i in folder_records(root)}
    with out.open("rb") as upload, open_image_tree(upload) as tree:
        got = {
            (i.record.key.removeprefix("root/"), tuple(i.record.truth), i.record.data)
            for i in read_folder(tree, max_image_bytes=LIMIT)
            if i.record
        }
    assert got == expected


def test_a_file_that_is_neither_folder_nor_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "images.txt"
    path.write_text("hello")
    with pytest.raises(ValueError, match="expected a directory, a zip or tar archive"):
        folder_records(path)


def test_truth_csv_maps_queries_to_references() -> None:
    truth, bad = read_truth_csv(lines("query_id,reference_id", "Q1,R1", "Q1,R2", "Q1,R1", "Q2,"))
    assert truth == {"Q1": ["R1", "R2"], "Q2": []}
    assert bad == []


def test_truth_csv_bad_rows_carry_their_line() -> None:
    _, bad = read_truth_csv(lines("Q1,R1", "Q2,R2,extra", ",R3"))
    assert problems(bad) == [
        (2, "expected 2 columns (query_id,reference_id), found 3"),
        (3, "empty query_id"),
    ]
    assert bad[0].where == "truth line 2"


def test_matching_truth_is_every_reference_of_the_query(tmp_path: Path) -> None:
    queries, truth_csv = matching_source(tmp_path)
    with open_image_tree(queries) as tree, truth_csv.open("rb") as truth:
        items = list(read_matching(tree, truth, max_image_bytes=LIMIT))
    assert [(i.record.key, i.record.truth) for i in items if i.record] == [
        ("Q0", ["R7", "R9"]),
        ("Q1", ["R3"]),
        ("Q2", []),
        ("Q3", []),
    ]


def test_matching_images_may_come_from_a_list_file(tmp_path: Path) -> None:
    queries, truth_csv = matching_source(tmp_path)
    listing = tmp_path / "queries.txt"
    listing.write_text("# wanted queries\nqueries/Q1.jpg\n\nqueries/Q0.jpg\nqueries/missing.jpg\n")
    with open_image_tree(listing, allow_list=True) as tree, truth_csv.open("rb") as truth:
        items = list(read_matching(tree, truth, max_image_bytes=LIMIT))
    assert [i.record.key for i in items if i.record] == ["Q1", "Q0"]
    assert problems(items) == [(3, "no such file")]


def test_a_truncated_archive_reports_where_it_broke(tmp_path: Path) -> None:
    root = folder_tree(tmp_path / "root", {"cat": 3})
    whole = tar_of(root, tmp_path / "whole.tar.gz").read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    items = folder_records(cut)
    good = [i.record.key for i in items if i.record]
    first_bad = next(i for i in items if i.problem)
    assert good == ["cat/0.png"]
    assert (first_bad.line, first_bad.where) == (2, "file cat/1.jpg")
    assert "end-of-stream" in (first_bad.problem or "")


def test_a_50_mb_image_is_refused_in_mb_naming_the_setting() -> None:
    from gateway.images import too_large_text

    assert too_large_text(50 * 1024 * 1024, 8 * 1024 * 1024) == (
        "image is 52.4 MB, over the hub's limit of 8.4 MB "
        "(RECOGHUB_MAX_IMAGE_BYTES=8388608, set by the organizer)"
    )


def test_files_that_are_not_images_are_reported_by_name_not_dropped(tmp_path: Path) -> None:
    root = folder_tree(tmp_path / "root", {"cat": 1})
    (root / "cat" / "a.webp").write_bytes(b"RIFF....WEBP")
    (root / "cat" / "b.bmp").write_bytes(b"BM")
    (root / "README.txt").write_text("about")
    (root / "cat" / ".DS_Store").write_bytes(b"\0")  # hidden: not the dataset's at all
    items = folder_records(root)
    assert [i.ignored for i in items if i.ignored] == ["README.txt", "cat/a.webp", "cat/b.bmp"]
    assert [i.record.key for i in items if i.record] == ["cat/0.png"]
    assert problems(items) == []

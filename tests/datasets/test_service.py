"""Imports into a real database (SQLite and PostgreSQL): rows, truth, stored files,
all-or-nothing, skipped lines."""

import io
import random
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import Settings
from gateway.datasets import service
from gateway.datasets.importers import ImageRecord, TsvColumns
from gateway.datasets.models import Dataset, DatasetImage
from gateway.datasets.storage import image_path
from gateway.db import make_engine, make_session_factory
from gateway.errors import Conflict, InvalidInput
from gateway.migrate import upgrade
from tests.builders import hub_settings
from tests.datasets.sources import (
    SECRET,
    b64,
    bomb_png,
    clickture_lines,
    distinct_jpeg,
    distinct_png,
    folder_tree,
    jpeg_with_exif,
    matching_source,
    png_with_text,
    write_lines,
)


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return hub_settings(database_url, tmp_path / "data", max_image_bytes=64 * 1024)


def stored_files(settings: Settings) -> set[Path]:
    return {p for p in (settings.data_dir / "images").rglob("*") if p.is_file()}


def image_rows(sessions: sessionmaker[Session], name: str) -> list[DatasetImage]:
    with sessions() as session:
        return list(
            session.scalars(
                select(DatasetImage)
                .join(Dataset, Dataset.id == DatasetImage.dataset_id)
                .where(Dataset.name == name)
                .order_by(DatasetImage.position)
            )
        )


def count(sessions: sessionmaker[Session], table: type[Dataset] | type[DatasetImage]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def run_import(
    sessions: sessionmaker[Session], settings: Settings, **kwargs: object
) -> service.ImportReport:
    with sessions() as session:
        return service.import_dataset(session=session, settings=settings, **kwargs)


def test_clickture_import_stores_every_image_with_its_label(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "dogs.tsv", clickture_lines(7))
    report = run_import(sessions, settings, name="dogs", format="clickture", source=source)

    assert (report.dataset.images, report.dataset.labels, report.dataset.kind) == (
        7,
        3,
        "classification",
    )
    assert report.skipped == [] and report.skipped_total == 0
    rows = image_rows(sessions, "dogs")
    assert [(r.position, r.key, r.truth) for r in rows[:4]] == [
        (0, "key-0", ["beagle"]),
        (1, "key-1", ["pug"]),
        (2, "key-2", ["husky"]),
        (3, "key-3", ["beagle"]),
    ]
    for row in rows:
        stored = image_path(settings.data_dir, row.sha256).read_bytes()
        assert Image.open(io.BytesIO(stored)).format == "JPEG"
        assert (row.content_type, row.size) == ("image/jpeg", len(stored))
    # Keys and labels live only in the database, never in file names.
    assert not any("key-" in str(p) or "beagle" in str(p) for p in stored_files(settings))


def test_inserts_span_several_chunks(
    sessions: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "CHUNK_ROWS", 3)
    source = write_lines(tmp_path / "dogs.tsv", clickture_lines(10))
    run_import(sessions, settings, name="dogs", format="clickture", source=source)
    assert [r.key for r in image_rows(sessions, "dogs")] == [f"key-{i}" for i in range(10)]


def test_tsv_import_with_several_labels(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    source = write_lines(
        tmp_path / "faces.tsv",
        [
            "mid\trank\tdata\textra",
            f"m.01\t1\t{b64(distinct_png(1))}\ta;b",
            f"m.02\t1\t{b64(distinct_png(2))}\tb",
        ],
    )
    columns = TsvColumns(key=0, labels=(3,), image=2, label_separator=";", header=True)
    report = run_import(
        sessions, settings, name="faces", format="tsv", source=source, columns=columns
    )
    assert (report.dataset.images, report.dataset.labels) == (2, 2)
    assert [(r.key, r.truth) for r in image_rows(sessions, "faces")] == [
        ("m.01", ["a", "b"]),
        ("m.02", ["b"]),
    ]


def test_folder_import(sessions: sessionmaker[Session], settings: Settings, tmp_path: Path) -> None:
    root = folder_tree(tmp_path / "imagenet", {"n01440764": 3, "n01443537": 2})
    report = run_import(sessions, settings, name="inet", format="folder", source=root)
    assert (report.dataset.images, report.dataset.labels) == (5, 2)
    truths = [r.truth for r in image_rows(sessions, "inet")]
    assert truths == [["n01440764"]] * 3 + [["n01443537"]] * 2


def test_matching_import_keeps_distractors_with_an_empty_truth(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    queries, truth = matching_source(tmp_path)
    report = run_import(
        sessions, settings, name="isc", format="matching", source=queries, truth=truth
    )
    assert (report.dataset.images, report.dataset.labels, report.dataset.kind) == (
        4,
        3,
        "matching",
    )
    assert {r.key: r.truth for r in image_rows(sessions, "isc")} == {
        "Q0": ["R7", "R9"],
        "Q1": ["R3"],
        "Q2": [],
        "Q3": [],
    }


def test_metadata_never_reaches_the_stored_files(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "exif.jpg").write_bytes(jpeg_with_exif())
    (root / "cat" / "text.png").write_bytes(png_with_text())
    run_import(sessions, settings, name="meta", format="folder", source=root)

    rows = {r.key: r for r in image_rows(sessions, "meta")}
    jpeg = image_path(settings.data_dir, rows["cat/exif.jpg"].sha256).read_bytes()
    png = image_path(settings.data_dir, rows["cat/text.png"].sha256).read_bytes()
    with Image.open(io.BytesIO(jpeg)) as img:
        assert dict(img.getexif()) == {}
        assert img.size == (40, 30)
    assert b"Exif" not in jpeg
    with Image.open(io.BytesIO(png)) as img:
        assert img.text == {}
    assert SECRET.encode() not in png
    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"eXIf"):
        assert chunk not in png


def test_jpeg_comments_never_reach_the_stored_files(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "c.tsv", [f"cat\tk\t{b64(jpeg_with_exif())}"])
    run_import(sessions, settings, name="meta", format="clickture", source=source)
    [row] = image_rows(sessions, "meta")
    stored = image_path(settings.data_dir, row.sha256).read_bytes()
    assert SECRET.encode() not in stored


GOOD = [f"beagle\tk-{i}\t{b64(distinct_jpeg(i))}" for i in range(4)]
BROKEN_LINES = {
    "wrong column count": (
        "beagle\tk-x",
        "line 3: expected 3 tab-separated columns (label, key, base64 image), found 2",
    ),
    "bad base64": ("beagle\tk-x\t@@@@", "line 3: column 3 is not valid base64"),
    "not an image": (
        f"beagle\tk-x\t{b64(b'this is some text, not a picture' * 3)}",
        "line 3: not a JPEG or PNG image Pillow can read",
    ),
    "image too large": (
        f"beagle\tk-x\t{b64(distinct_png(1) + bytes(70_000))}",
        "line 3: image is 70",
    ),
    "decompression bomb": (
        f"beagle\tk-x\t{b64(bomb_png())}",
        "line 3: refused as a decompression bomb",
    ),
    "empty key": (f"beagle\t\t{b64(distinct_png(1))}", "line 3: column 2 (key) is empty"),
    "empty label": (f" \tk-x\t{b64(distinct_png(1))}", "line 3: column 1 (label) is empty"),
    "duplicate key": (
        f"beagle\tk-0\t{b64(distinct_png(1))}",
        "line 3: duplicate key 'k-0' (first at line 1)",
    ),
}


# Bad lines are found before the import touches the database (see the race test below
# for a rollback on both databases), so SQLite alone keeps these quick.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", list(BROKEN_LINES))
def test_a_broken_line_names_line_and_reason_and_imports_nothing(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path, kind: str
) -> None:
    line, reason = BROKEN_LINES[kind]
    source = write_lines(tmp_path / "dogs.tsv", [*GOOD[:2], line, *GOOD[2:]])
    with pytest.raises(InvalidInput) as raised:
        run_import(sessions, settings, name="dogs", format="clickture", source=source)
    assert raised.value.detail.startswith(reason)
    assert count(sessions, Dataset) == 0
    assert count(sessions, DatasetImage) == 0
    assert stored_files(settings) == set()


def test_a_name_taken_during_the_import_rolls_it_back(
    sessions: sessionmaker[Session], settings: Settings, database_url: str
) -> None:
    other = make_engine(database_url)

    def records() -> Iterator[ImageRecord]:
        for i in range(5):
            if i == 3:  # another organizer imports under the same name meanwhile
                with other.begin() as conn:
                    conn.execute(insert(Dataset).values(name="dogs", format="x", kind="x"))
            yield ImageRecord(f"k{i}", ["x"], distinct_png(i))

    with sessions() as session, pytest.raises(Conflict, match="'dogs' already exists"):
        service.import_records(
            session=session,
            settings=settings,
            name="dogs",
            format="generated",
            kind="classification",
            records=records(),
        )
    other.dispose()
    assert count(sessions, Dataset) == 1
    assert count(sessions, DatasetImage) == 0
    assert stored_files(settings) == set()


def test_a_failed_import_keeps_files_other_datasets_use(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    run_import(
        sessions,
        settings,
        name="first",
        format="clickture",
        source=write_lines(tmp_path / "a.tsv", GOOD[:2]),
    )
    before = stored_files(settings)
    broken = write_lines(tmp_path / "b.tsv", [*GOOD, "bad line"])
    with pytest.raises(InvalidInput, match="line 5"):
        run_import(sessions, settings, name="second", format="clickture", source=broken)
    assert stored_files(settings) == before
    assert len(image_rows(sessions, "first")) == 2


def test_skip_bad_imports_the_good_lines_and_lists_the_bad(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    source = write_lines(
        tmp_path / "dogs.tsv",
        [GOOD[0], "beagle\tk-x", GOOD[1], f"beagle\tk-y\t{b64(bomb_png())}", GOOD[2], GOOD[0]],
    )
    report = run_import(
        sessions, settings, name="dogs", format="clickture", source=source, skip_bad=True
    )
    assert report.dataset.images == 3
    assert [r.key for r in image_rows(sessions, "dogs")] == ["k-0", "k-1", "k-2"]
    assert report.skipped_total == 3
    assert [(s.line, s.reason.split(":")[0]) for s in report.skipped] == [
        (2, "expected 3 tab-separated columns (label, key, base64 image), found 2"),
        (4, "refused as a decompression bomb"),
        (6, "duplicate key 'k-0' (first at line 1)"),
    ]


def test_skipped_list_is_capped_but_counted(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "dogs.tsv", [GOOD[0]] + ["bad"] * 150)
    report = run_import(
        sessions, settings, name="dogs", format="clickture", source=source, skip_bad=True
    )
    assert report.skipped_total == 150
    assert len(report.skipped) == service.MAX_SKIPPED_LISTED
    assert report.skipped[-1].line == service.MAX_SKIPPED_LISTED + 1


def test_a_source_with_no_image_is_refused(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "dogs.tsv", ["bad", "worse"])
    with pytest.raises(InvalidInput, match="no images; all 2 lines were bad"):
        run_import(
            sessions, settings, name="dogs", format="clickture", source=source, skip_bad=True
        )
    assert count(sessions, Dataset) == 0


def test_a_taken_name_is_a_conflict(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "dogs.tsv", GOOD)
    run_import(sessions, settings, name="dogs", format="clickture", source=source)
    with pytest.raises(Conflict, match="'dogs' already exists"):
        run_import(sessions, settings, name="dogs", format="clickture", source=source)
    assert count(sessions, Dataset) == 1


def test_a_missing_path_is_invalid_input(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="is not a file on the hub host"):
        run_import(
            sessions, settings, name="d", format="clickture", source=tmp_path / "missing.tsv"
        )
    with pytest.raises(InvalidInput, match="does not exist on the hub host"):
        run_import(sessions, settings, name="d", format="folder", source=tmp_path / "missing")


def test_import_records_takes_images_made_in_memory(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    records = (
        ImageRecord(f"img-{i}", ["red" if i % 2 else "blue"], distinct_png(i)) for i in range(6)
    )
    with sessions() as session:
        dataset = service.import_records(
            session=session,
            settings=settings,
            name="generated",
            format="generated",
            kind="classification",
            records=records,
        )
        assert (dataset.images, dataset.labels) == (6, 2)
    assert [r.truth for r in image_rows(sessions, "generated")][:2] == [["blue"], ["red"]]


def test_import_records_reports_the_bad_record(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    records = [("a", ["x"], distinct_png(1)), ("b", ["x"], b"not an image")]
    with sessions() as session, pytest.raises(InvalidInput, match="^record 2: not a JPEG"):
        service.import_records(
            session=session,
            settings=settings,
            name="generated",
            format="generated",
            kind="classification",
            records=records,
        )
    assert stored_files(settings) == set()


def test_a_bad_truth_row_names_its_csv_line(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    queries, truth = matching_source(tmp_path)
    with truth.open("a") as csv:
        csv.write("Q3,R1,R2\n")
    with pytest.raises(InvalidInput, match="^truth line 7: expected 2 columns"):
        run_import(sessions, settings, name="isc", format="matching", source=queries, truth=truth)
    assert count(sessions, Dataset) == 0


def test_the_database_stays_writable_while_images_are_read(sqlite_url: str, tmp_path: Path) -> None:
    # An import reads for minutes; SQLite has one writer, and the runs in progress
    # must keep recording results meanwhile.
    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    impatient = create_engine(sqlite_url, connect_args={"timeout": 0.2})
    settings = hub_settings(sqlite_url, tmp_path / "data")

    def records() -> Iterator[ImageRecord]:
        for i in range(6):
            if i == 3:
                with impatient.begin() as conn:
                    conn.execute(insert(Dataset).values(name="meanwhile", format="x", kind="x"))
            yield ImageRecord(f"k{i}", ["x"], distinct_png(i))

    with sessions() as session:
        service.import_records(
            session=session,
            settings=settings,
            name="slow",
            format="generated",
            kind="classification",
            records=records(),
        )
    with sessions() as session:
        assert set(session.scalars(select(Dataset.name))) == {"slow", "meanwhile"}
    impatient.dispose()
    engine.dispose()


def test_memory_stays_flat_however_large_the_file(sqlite_url: str, tmp_path: Path) -> None:
    # 300 lines of ~100 KB images (a 40 MB file): holding the file, or its images, would
    # show up many times over in the peak.
    noise = Image.frombytes("RGB", (300, 300), random.Random(7).randbytes(300 * 300 * 3))
    out = io.BytesIO()
    noise.save(out, format="JPEG", quality=95)
    encoded = b64(out.getvalue())
    source = tmp_path / "big.tsv"
    with source.open("w") as f:
        for i in range(300):
            f.write(f"noise\tk{i}\t{encoded}\n")
    assert source.stat().st_size > 30_000_000
    engine = make_engine(sqlite_url)
    upgrade(engine)
    settings = hub_settings(sqlite_url, tmp_path / "data")

    tracemalloc.start()
    try:
        with make_session_factory(engine)() as session:
            report = service.import_dataset(
                session=session, settings=settings, name="big", format="clickture", source=source
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        engine.dispose()
    assert report.dataset.images == 300
    assert peak < 6_000_000, peak

"""Dataset import and lookup.

An import reads its source one image at a time: each image is validated
(`gateway.images.check_image`), stripped of its metadata once, and stored once at its
content address, and its row is spooled to a temporary file. Then one database
transaction inserts the dataset and its rows in chunks. Memory stays flat however
large the source, and the database (SQLite's single writer above all) is held only
for the inserts, not for the minutes of image work. All or nothing: a bad line stops
the import, and the image files it wrote are removed, unless the organizer asked to
skip bad lines, in which case they are reported instead.
"""

import json
import logging
import tempfile
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from PIL import Image
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.datasets import importers
from gateway.datasets.importers import ImageRecord, SourceItem, TsvColumns
from gateway.datasets.models import Dataset, DatasetImage
from gateway.datasets.storage import remove_images, store_image
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.images import ImageRejected, NotAnImage, check_image, strip_metadata

log = logging.getLogger("recoghub.datasets")

CHUNK_ROWS = 1000
MAX_SKIPPED_LISTED = 100
MAX_KEY_CHARS = 300  # DatasetImage.key
KINDS = ("classification", "matching")
SKIP_HINT = " (nothing was imported; set skip_bad to import the other lines)"


@dataclass(frozen=True, slots=True)
class SkippedItem:
    line: int
    where: str
    reason: str


@dataclass(slots=True)
class ImportReport:
    """An imported dataset and the bad lines skipped (the first MAX_SKIPPED_LISTED)."""

    dataset: Dataset
    skipped: list[SkippedItem] = field(default_factory=list)
    skipped_total: int = 0
    # Files of a folder or archive that are not images the hub reads (the first
    # MAX_SKIPPED_LISTED paths): imported nothing from, said by name.
    ignored: list[str] = field(default_factory=list)
    ignored_total: int = 0


Source = Path | IO[bytes]


def import_dataset(
    *,
    session: Session,
    settings: Settings,
    name: str,
    format: str,
    source: Source,
    truth: Source | None = None,
    columns: TsvColumns | None = None,
    skip_bad: bool = False,
) -> ImportReport:
    """Import `source` (a path on the hub host, or an open uploaded file) as dataset `name`.

    `columns` is required for "tsv", `truth` (the CSV) for "matching". Give a session
    with no pending changes: it is committed before the source is read (so no
    transaction stays open meanwhile) and again on success. Raises Conflict if the name
    is taken, InvalidInput naming the line and the reason for a bad line (unless
    `skip_bad`) or an unreadable source; on any failure nothing stays behind.
    """
    limit = settings.max_image_bytes
    with ExitStack() as stack:

        def binary(src: Source, what: str) -> IO[bytes]:
            if not isinstance(src, Path):
                return src
            if not src.is_file():
                raise InvalidInput(f"{what} {src} is not a file on the hub host")
            return stack.enter_context(src.open("rb"))

        def tree(allow_list: bool = False) -> importers.ImageTree:
            if isinstance(source, Path) and not source.exists():
                raise InvalidInput(f"path {source} does not exist on the hub host")
            try:
                return stack.enter_context(importers.open_image_tree(source, allow_list=allow_list))
            except ValueError as exc:
                raise InvalidInput(f"{format} source: {exc}") from None

        items: Iterable[SourceItem]
        kind = "classification"
        if format == "clickture":
            items = importers.read_clickture(binary(source, "path"), max_image_bytes=limit)
        elif format == "tsv":
            if columns is None:
                raise InvalidInput("format tsv needs key_column, label_column and image_column")
            items = importers.read_tsv(
                binary(source, "path"), columns=columns, max_image_bytes=limit
            )
        elif format == "folder":
            items = importers.read_folder(tree(), max_image_bytes=limit)
        elif format == "matching":
            if truth is None:
                raise InvalidInput("format matching needs the truth CSV (query_id,reference_id)")
            kind = "matching"
            images = tree(allow_list=True)
            items = importers.read_matching(images, binary(truth, "truth"), max_image_bytes=limit)
        else:
            raise InvalidInput(f"unknown format {format!r}; use one of {importers.FORMATS}")
        return _import_items(
            session=session,
            settings=settings,
            name=name,
            format=format,
            kind=kind,
            items=items,
            skip_bad=skip_bad,
        )


def import_records(
    *,
    session: Session,
    settings: Settings,
    name: str,
    format: str,
    kind: str,
    records: Iterable[ImageRecord],
) -> Dataset:
    """Import images made in memory (the demo, benchmarks) as dataset `name`.

    Records are `ImageRecord(key, truth, data)` (plain tuples do), read one at a time.
    Same checks, storage and commit as `import_dataset`; the first bad record raises
    InvalidInput ("record N: ..."), a taken name Conflict.
    """
    items = (
        SourceItem(number, f"record {number}", record=ImageRecord(*record))
        for number, record in enumerate(records, start=1)
    )
    report = _import_items(
        session=session,
        settings=settings,
        name=name,
        format=format,
        kind=kind,
        items=items,
        skip_bad=False,
    )
    return report.dataset


def list_datasets(*, session: Session, open_to_teams: bool | None = None) -> list[Dataset]:
    """Every dataset, or only those open (closed) to team-started dry runs."""
    query = select(Dataset).order_by(Dataset.id)
    if open_to_teams is not None:
        query = query.where(Dataset.open_to_teams.is_(open_to_teams))
    return list(session.scalars(query))


def get_dataset(*, session: Session, dataset_id: int) -> Dataset:
    """The dataset `dataset_id`; raises NotFound."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"no dataset with id {dataset_id}")
    return dataset


def update_dataset(
    *,
    session: Session,
    dataset_id: int,
    name: str | None = None,
    open_to_teams: bool | None = None,
) -> Dataset:
    """Rename the dataset and/or open (close) it to team-started dry runs. Commits.

    Raises NotFound, InvalidInput for an empty name, Conflict for a name another
    dataset has.
    """
    dataset = get_dataset(session=session, dataset_id=dataset_id)
    if name is not None:
        name = name.strip()
        if not name:
            raise InvalidInput("the dataset name is empty")
        other = session.scalar(
            select(Dataset.id).where(Dataset.name == name, Dataset.id != dataset.id)
        )
        if other is not None:
            raise Conflict(f"a dataset named {name!r} already exists (dataset {other})")
        dataset.name = name
    if open_to_teams is not None:
        dataset.open_to_teams = open_to_teams
    try:
        session.commit()
    except IntegrityError:  # another rename took the name meanwhile
        session.rollback()
        raise Conflict(f"a dataset named {name!r} already exists") from None
    return dataset


def delete_dataset(*, session: Session, settings: Settings, dataset_id: int) -> None:
    """Delete a dataset no run uses: its rows, and the image files no other dataset
    shares (files are stored once per content). Commits.

    Raises NotFound, or Conflict naming the runs that use it (their results refer to
    its images: delete nothing a leaderboard stands on).
    """
    from gateway.runs.models import Run  # runs depend on datasets, not the reverse

    dataset = get_dataset(session=session, dataset_id=dataset_id)
    runs = list(
        session.scalars(select(Run.id).where(Run.dataset_id == dataset.id).order_by(Run.id))
    )
    if runs:
        listed = ", ".join(str(r) for r in runs[:20]) + (", ..." if len(runs) > 20 else "")
        raise Conflict(
            f"dataset {dataset.id} is used by run{'s' if len(runs) > 1 else ''} {listed}; "
            "a dataset with runs cannot be deleted (rename it instead)"
        )
    sha256s = list(
        session.scalars(
            select(DatasetImage.sha256).where(DatasetImage.dataset_id == dataset.id).distinct()
        )
    )
    name = dataset.name
    session.execute(delete(DatasetImage).where(DatasetImage.dataset_id == dataset.id))
    session.delete(dataset)
    try:
        session.commit()
    except IntegrityError:  # a run was started on it meanwhile
        session.rollback()
        raise Conflict(f"dataset {dataset_id} is used by a run started just now") from None
    _discard_unreferenced(session=session, data_dir=settings.data_dir, sha256s=sha256s)
    log.info("deleted dataset %d %r (%d stored images checked)", dataset_id, name, len(sha256s))


def _import_items(
    *,
    session: Session,
    settings: Settings,
    name: str,
    format: str,
    kind: str,
    items: Iterable[SourceItem],
    skip_bad: bool,
) -> ImportReport:
    if kind not in KINDS:
        raise InvalidInput(f"unknown dataset kind {kind!r}; use one of {KINDS}")
    if not name.strip():
        raise InvalidInput("the dataset name is empty")
    taken = session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None
    # Reading the source takes long and needs no database: hold no transaction meanwhile.
    session.commit()
    if taken:
        raise Conflict(f"a dataset named {name!r} already exists")

    dataset = Dataset(name=name, format=format, kind=kind, images=0, labels=0)
    report = ImportReport(dataset)
    written: list[str] = []
    with tempfile.TemporaryFile("w+", encoding="utf-8") as rows:
        try:
            images, labels = _store_items(
                settings=settings,
                kind=kind,
                items=items,
                skip_bad=skip_bad,
                report=report,
                written=written,
                rows=rows,
            )
            if images == 0:
                reason = "the source holds no images"
                if report.skipped_total:
                    reason += f"; all {report.skipped_total} lines were bad"
                if report.ignored_total:
                    reason += (
                        f"; {report.ignored_total} files are not .jpg, .jpeg or .png "
                        f"(e.g. {report.ignored[0]})"
                    )
                raise InvalidInput(reason)
            dataset.images, dataset.labels = images, labels
            rows.seek(0)
            _insert(session=session, dataset=dataset, rows=rows)
            session.commit()
        except BaseException:
            session.rollback()
            _discard_unreferenced(session=session, data_dir=settings.data_dir, sha256s=written)
            raise
    log.info("imported dataset %r: %d images, %d labels", name, images, labels)
    return report


def _store_items(
    *,
    settings: Settings,
    kind: str,
    items: Iterable[SourceItem],
    skip_bad: bool,
    report: ImportReport,
    written: list[str],
    rows: IO[str],
) -> tuple[int, int]:
    """Check, strip and store every image, writing its row to `rows` (one JSON list a
    line); returns (images, labels). Raises InvalidInput for a bad item unless `skip_bad`."""
    first_seen: dict[str, str] = {}  # key -> where; keys only, never images
    labels: set[str] = set()
    images = 0

    def bad(item: SourceItem, reason: str) -> None:
        if not skip_bad:
            raise InvalidInput(f"{item.where}: {reason}{SKIP_HINT}")
        report.skipped_total += 1
        if len(report.skipped) < MAX_SKIPPED_LISTED:
            report.skipped.append(SkippedItem(item.line, item.where, reason))

    for item in items:
        if item.ignored is not None:
            report.ignored_total += 1
            if len(report.ignored) < MAX_SKIPPED_LISTED:
                report.ignored.append(item.ignored)
            continue
        if item.record is None:
            bad(item, item.problem or "unreadable")
            continue
        key, truth, data = item.record
        key = key.strip()
        truth = list(dict.fromkeys(t.strip() for t in truth if t.strip()))
        if not key:
            bad(item, "empty key")
            continue
        if len(key) > MAX_KEY_CHARS:
            bad(item, f"key is {len(key)} characters, over the {MAX_KEY_CHARS}-character limit")
            continue
        if key in first_seen:
            bad(item, f"duplicate key {key!r} (first at {first_seen[key]})")
            continue
        if _needs_label(kind) and not truth:
            bad(item, "empty label")
            continue
        try:
            checked = check_image(
                data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
            )
            try:
                clean = strip_metadata(checked)
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                # verify() passed but decoding did not: truncated or corrupt data.
                raise NotAnImage(f"image data is corrupt: {exc}") from None
        except ImageRejected as exc:
            bad(item, str(exc))
            continue
        sha256, new = store_image(settings.data_dir, clean.data)
        if new:
            written.append(sha256)
        first_seen[key] = item.where
        labels.update(truth)
        rows.write(json.dumps([key, truth, sha256, clean.content_type, len(clean.data)]) + "\n")
        images += 1
    return images, len(labels)


def _insert(*, session: Session, dataset: Dataset, rows: IO[str]) -> None:
    """Insert the dataset and its image rows, CHUNK_ROWS at a time, in the session's
    transaction. Raises Conflict if another import took the name meanwhile."""
    session.add(dataset)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a dataset named {dataset.name!r} already exists") from None
    chunk: list[dict[str, object]] = []
    for position, line in enumerate(rows):
        key, truth, sha256, content_type, size = json.loads(line)
        chunk.append(
            {
                "dataset_id": dataset.id,
                "position": position,
                "key": key,
                "truth": truth,
                "sha256": sha256,
                "content_type": content_type,
                "size": size,
            }
        )
        if len(chunk) >= CHUNK_ROWS:
            session.execute(insert(DatasetImage), chunk)
            chunk = []
    if chunk:
        session.execute(insert(DatasetImage), chunk)


def _needs_label(kind: str) -> bool:
    """Classification images need a label; matching images may have no reference."""
    return kind == "classification"


def _discard_unreferenced(*, session: Session, data_dir: Path, sha256s: list[str]) -> None:
    """Remove these image files, except any that a dataset has committed rows for (a
    failed import's files another import found already there, a deleted dataset's
    files another dataset shares)."""
    try:
        for start in range(0, len(sha256s), 500):
            chunk = sha256s[start : start + 500]
            kept = set(
                session.scalars(
                    select(DatasetImage.sha256).where(DatasetImage.sha256.in_(chunk)).distinct()
                )
            )
            remove_images(data_dir, (s for s in chunk if s not in kept))
        session.rollback()
    except (SQLAlchemyError, OSError):
        log.exception("could not remove unused image files; they stay, unused")

"""Readers of the import formats (SPEC §5), one per format.

Each reader yields one `SourceItem` per image, in source order: either an
`ImageRecord` (key, true tags, raw image bytes) or the problem that made the line or
file unusable, with its line number. Readers hold one image at a time, never the
dataset; checking images and keys is the service's job (`service.import_records`).

    clickture   `label \\t key \\t base64(JPEG)` per line
    tsv         any tab-separated file; `TsvColumns` names the key, label(s), image columns
    folder      `root/<label>/<file>` (.jpg .jpeg .png); a directory, a zip or a tar
    matching    query images (a directory, an archive, or a list file) plus a CSV
                `query_id,reference_id`; truth = every reference id of the query
"""

import base64
import binascii
import csv
import io
import os
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, NamedTuple

from gateway.images import too_large_text

FORMATS = ("clickture", "tsv", "folder", "matching")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Text columns beside the image on one line (keys, labels, MS-Celeb's URLs...).
TEXT_SLACK_BYTES = 1024 * 1024
_BOM = b"\xef\xbb\xbf"


class ImageRecord(NamedTuple):
    """One image to import: its dataset key, its true tags, and its raw bytes."""

    key: str
    truth: list[str]
    data: bytes


@dataclass(frozen=True, slots=True)
class SourceItem:
    """A record read from the source, or why the line/file at `line` could not be read.

    `line` is the line number for line formats and the 1-based file number for
    folders; `where` says it for people ("line 17", "file dogs/a.jpg").
    """

    line: int
    where: str
    record: ImageRecord | None = None
    problem: str | None = None
    # A file of a folder or archive that is not an image the hub reads (.webp, .bmp,
    # a README...): not a problem, but reported by name so that none vanishes unsaid.
    ignored: str | None = None


@dataclass(frozen=True, slots=True)
class TsvColumns:
    """Which 0-based columns of a TSV hold the key, the label(s) and the base64 image."""

    key: int
    labels: tuple[int, ...]
    image: int
    label_separator: str | None = None
    header: bool = False


class _Problem(Exception):
    """A line or file that cannot be imported; the message is the reason."""


def max_line_bytes(max_image_bytes: int) -> int:
    """The longest line a line format may have for images within `max_image_bytes`."""
    return max_image_bytes * 4 // 3 + 4 + TEXT_SLACK_BYTES


def _lines(stream: IO[bytes], *, max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line without its end) for each line; None for an over-long line,
    which is skipped without being held in memory."""
    number = 0
    while raw := stream.readline(max_bytes + 1):
        number += 1
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            while (rest := stream.readline(1024 * 1024)) and not rest.endswith(b"\n"):
                pass
            yield number, None
            continue
        yield number, raw.rstrip(b"\r\n")


def _text(column: bytes, what: str) -> str:
    try:
        return column.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _Problem(f"{what} is not valid UTF-8") from None


def _base64(column: bytes, what: str) -> bytes:
    column = column.strip()
    if not column:
        raise _Problem(f"{what} is empty, expected base64 image data")
    try:
        # Some writers drop the padding; accept that, nothing else.
        return base64.b64decode(column + b"=" * (-len(column) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _Problem(f"{what} is not valid base64") from None


def _read_lines(
    stream: IO[bytes],
    parse: Callable[[list[bytes]], ImageRecord],
    *,
    max_bytes: int,
    skip_first: bool = False,
) -> Iterator[SourceItem]:
    for number, line in _lines(stream, max_bytes=max_bytes):
        where = f"line {number}"
        if skip_first and number == 1:
            continue
        if line is None:
            yield SourceItem(
                number, where, problem=f"line is over {max_bytes} bytes: the image is too large"
            )
            continue
        if not line.strip():
            continue
        try:
            yield SourceItem(number, where, record=parse(line.split(b"\t")))
        except _Problem as exc:
            yield SourceItem(number, where, problem=str(exc))


def read_clickture(stream: IO[bytes], *, max_image_bytes: int) -> Iterator[SourceItem]:
    """Read `label \\t key \\t base64(JPEG)` lines; blank lines are ignored."""

    def parse(columns: list[bytes]) -> ImageRecord:
        if len(columns) != 3:
            raise _Problem(
                f"expected 3 tab-separated columns (label, key, base64 image), found {len(columns)}"
            )
        label = _text(columns[0], "column 1 (label)")
        key = _text(columns[1], "column 2 (key)")
        if not label:
            raise _Problem("column 1 (label) is empty")
        if not key:
            raise _Problem("column 2 (key) is empty")
        return ImageRecord(key, [label], _base64(columns[2], "column 3"))

    return _read_lines(stream, parse, max_bytes=max_line_bytes(max_image_bytes))


def read_tsv(
    stream: IO[bytes], *, columns: TsvColumns, max_image_bytes: int
) -> Iterator[SourceItem]:
    """Read a tab-separated file with the key, label(s) and image where `columns` says.

    Labels come from every label column, each split at `label_separator` when given;
    empty pieces are dropped and a line must keep at least one label.
    """
    needed = max(columns.key, columns.image, *columns.labels) + 1

    def name(index: int, role: str) -> str:
        return f"column {index + 1} ({role}, index {index})"

    def parse(cells: list[bytes]) -> ImageRecord:
        if len(cells) < needed:
            raise _Problem(f"has {len(cells)} tab-separated columns, expected at least {needed}")
        key = _text(cells[columns.key], name(columns.key, "key"))
        if not key:
            raise _Problem(f"{name(columns.key, 'key')} is empty")
        labels: list[str] = []
        for index in columns.labels:
            value = _text(cells[index], name(index, "label"))
            pieces = value.split(columns.label_separator) if columns.label_separator else [value]
            labels.extend(p.strip() for p in pieces if p.strip())
        if not labels:
            where = ", ".join(str(i + 1) for i in columns.labels)
            raise _Problem(f"empty label (column {where})")
        data = _base64(cells[columns.image], name(columns.image, "image"))
        return ImageRecord(key, list(dict.fromkeys(labels)), data)

    return _read_lines(
        stream, parse, max_bytes=max_line_bytes(max_image_bytes), skip_first=columns.header
    )


# ---- image trees: a directory, a zip or a tar, read one file at a time ----


@dataclass(frozen=True, slots=True)
class TreeFile:
    """An image file of a tree: its path relative to the tree's root, and how to read it."""

    path: str
    size: int
    read: Callable[[int], bytes]
    image: bool = True  # False: not a .jpg/.jpeg/.png, reported as ignored


def _hidden(path: str) -> bool:
    # Hidden files, and macOS resource forks named like images: not the dataset's at all.
    return any(p.startswith(".") or p == "__MACOSX" for p in PurePosixPath(path).parts)


def _is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_SUFFIXES)


def _ignored(path: str) -> TreeFile:
    return TreeFile(path, 0, lambda limit: b"", image=False)


def _directory_files(root: Path) -> Iterator[TreeFile]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for filename in sorted(files):
            full = Path(folder) / filename
            rel = full.relative_to(root).as_posix()
            if _hidden(rel) or not full.is_file():
                continue
            if not _is_image(rel):
                yield _ignored(rel)
                continue
            yield TreeFile(rel, full.stat().st_size, _file_reader(full))


def _file_reader(path: Path) -> Callable[[int], bytes]:
    def read(limit: int) -> bytes:
        with path.open("rb") as f:
            return f.read(limit)

    return read


def _zip_files(archive: zipfile.ZipFile) -> Iterator[TreeFile]:
    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        if info.is_dir() or _hidden(info.filename):
            continue
        if not _is_image(info.filename):
            yield _ignored(_relative(info.filename))
        else:

            def read(limit: int, info: zipfile.ZipInfo = info) -> bytes:
                with archive.open(info) as f:
                    return f.read(limit)

            yield TreeFile(_relative(info.filename), info.file_size, read)


def _relative(name: str) -> str:
    return "/".join(p for p in PurePosixPath(name).parts if p not in ("/", "."))


def _tar_files(archive: tarfile.TarFile) -> Iterator[TreeFile]:
    # Archive order: a compressed tar is read straight through, once.
    while (member := archive.next()) is not None:
        # TarFile keeps every header it reads; drop them so memory stays flat.
        archive.members.clear()  # type: ignore[attr-defined]
        if not member.isfile() or _hidden(member.name):
            continue
        if not _is_image(member.name):
            yield _ignored(_relative(member.name))
        else:

            def read(limit: int, member: tarfile.TarInfo = member) -> bytes:
                f = archive.extractfile(member)
                return f.read(limit) if f is not None else b""

            yield TreeFile(_relative(member.name), member.size, read)


def _list_files(lines: IO[str], base: Path) -> Iterator[TreeFile]:
    """Images named one a line (relative to `base`, the list file's folder)."""
    for raw in lines:
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        full = base / entry
        size = full.stat().st_size if full.is_file() else -1
        yield TreeFile(entry, size, _file_reader(full))


ImageTree = Iterator[TreeFile]


@contextmanager
def open_image_tree(source: Path | IO[bytes], *, allow_list: bool = False) -> Iterator[ImageTree]:
    """The image files under a directory, in a zip or tar archive (a path or an uploaded
    file), or — with `allow_list` — named by a list file. Raises ValueError saying why
    the source is none of these."""
    with ExitStack() as stack:
        if isinstance(source, Path) and source.is_dir():
            yield _directory_files(source)
            return
        stream: IO[bytes]
        if isinstance(source, Path):
            if not source.is_file():
                raise ValueError(f"{source} does not exist on the hub host")
            stream = stack.enter_context(source.open("rb"))
        else:
            stream = source
        if zipfile.is_zipfile(stream):
            stream.seek(0)
            yield _zip_files(stack.enter_context(zipfile.ZipFile(stream)))
            return
        stream.seek(0)
        try:
            archive = stack.enter_context(tarfile.open(fileobj=stream, mode="r:*"))
        except tarfile.TarError:
            archive = None
        if archive is not None:
            yield _tar_files(archive)
            return
        if allow_list and isinstance(source, Path):
            lines = stack.enter_context(source.open(encoding="utf-8", errors="replace"))
            yield _list_files(lines, source.parent)
            return
        expected = "a directory, a zip or tar archive" + (", or a list file" if allow_list else "")
        raise ValueError(f"expected {expected} of images")


_ARCHIVE_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError)


def _tree_items(
    tree: ImageTree, *, max_image_bytes: int, record: Callable[[str, bytes], ImageRecord]
) -> Iterator[SourceItem]:
    number = 0
    while True:
        try:
            file = next(tree, None)
        except _ARCHIVE_ERRORS as exc:
            # The archive itself is broken: nothing after this point can be read.
            yield SourceItem(number + 1, f"after file {number}", problem=f"unreadable: {exc}")
            return
        if file is None:
            return
        if not file.image:
            yield SourceItem(number, f"file {file.path}", ignored=file.path)
            continue
        number += 1
        yield _tree_item(number, file, max_image_bytes=max_image_bytes, record=record)


def _tree_item(
    number: int,
    file: TreeFile,
    *,
    max_image_bytes: int,
    record: Callable[[str, bytes], ImageRecord],
) -> SourceItem:
    where = f"file {file.path}"
    try:
        if file.size < 0:
            raise _Problem("no such file")
        if file.size > max_image_bytes:
            raise _Problem(too_large_text(file.size, max_image_bytes))
        return SourceItem(number, where, record=record(file.path, file.read(max_image_bytes + 1)))
    except _Problem as exc:
        return SourceItem(number, where, problem=str(exc))
    except _ARCHIVE_ERRORS as exc:
        return SourceItem(number, where, problem=f"cannot be read: {exc}")


def read_folder(tree: ImageTree, *, max_image_bytes: int) -> Iterator[SourceItem]:
    """Read `<label>/<file>` images: the label is the folder holding the file, the key
    its path in the tree. An image with no folder above it is a problem."""

    def record(path: str, data: bytes) -> ImageRecord:
        parts = PurePosixPath(path).parts
        if len(parts) < 2:
            raise _Problem("is not inside a <label>/ folder")
        return ImageRecord(path, [parts[-2].strip()], data)

    return _tree_items(tree, max_image_bytes=max_image_bytes, record=record)


def read_truth_csv(stream: IO[bytes]) -> tuple[dict[str, list[str]], list[SourceItem]]:
    """The ground truth of a matching dataset: query id -> reference ids, and the bad rows.

    Rows are `query_id,reference_id`; an empty reference id declares a query without a
    match (a distractor). A first row naming the columns is a header.
    """
    truth: dict[str, list[str]] = {}
    problems: list[SourceItem] = []
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(text)
        first = True
        while True:
            before = reader.line_num
            try:
                row = next(reader)
            except StopIteration:
                break
            except UnicodeDecodeError:
                number = before + 1
                problems.append(SourceItem(number, f"truth line {number}", problem="not UTF-8"))
                break  # the decoder cannot resynchronise
            except csv.Error as exc:
                number = max(reader.line_num, before + 1)
                problems.append(SourceItem(number, f"truth line {number}", problem=str(exc)))
                if reader.line_num == before:
                    break
                continue
            number = reader.line_num
            where = f"truth line {number}"
            cells = [c.strip() for c in row]
            if first:
                first = False
                if cells and cells[0].lower() in {"query_id", "query"}:
                    continue
            if not any(cells):
                continue
            if len(cells) != 2:
                problems.append(
                    SourceItem(
                        number,
                        where,
                        problem=f"expected 2 columns (query_id,reference_id), found {len(cells)}",
                    )
                )
            elif not cells[0]:
                problems.append(SourceItem(number, where, problem="empty query_id"))
            else:
                references = truth.setdefault(cells[0], [])
                if cells[1] and cells[1] not in references:
                    references.append(cells[1])
    finally:
        text.detach()
    return truth, problems


def read_matching(
    tree: ImageTree, truth_stream: IO[bytes], *, max_image_bytes: int
) -> Iterator[SourceItem]:
    """Read query images (key = file stem) with their reference ids from the truth CSV;
    a query the CSV does not name, or names without a reference, is a distractor."""
    truth, problems = read_truth_csv(truth_stream)
    yield from problems

    def record(path: str, data: bytes) -> ImageRecord:
        key = PurePosixPath(path).stem
        return ImageRecord(key, list(truth.get(key, [])), data)

    yield from _tree_items(tree, max_image_bytes=max_image_bytes, record=record)

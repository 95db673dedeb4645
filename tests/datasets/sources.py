"""Builders of dataset sources for the import tests: images with metadata, bombs, and
clickture / tsv / folder / matching files on disk."""

import base64
import io
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.builders import jpeg_bytes, png_bytes

SECRET = "secret-label-leak"


def jpeg_with_exif(color: tuple[int, int, int] = (10, 120, 240)) -> bytes:
    """A JPEG carrying EXIF (description, artist) and a comment, all naming SECRET."""
    image = Image.new("RGB", (40, 30), color)
    exif = Image.Exif()
    exif[0x010E] = SECRET  # ImageDescription
    exif[0x013B] = SECRET  # Artist
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, comment=SECRET.encode())
    return out.getvalue()


def png_with_text(color: tuple[int, int, int] = (240, 120, 10)) -> bytes:
    """A PNG carrying tEXt, zTXt and iTXt chunks naming SECRET."""
    info = PngInfo()
    info.add_text("Comment", SECRET)
    info.add_text("Label", SECRET, zip=True)
    info.add_itxt("Title", SECRET)
    out = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 100_000) -> bytes:
    """A few hundred bytes claiming to be a side x side grayscale PNG (10^10 pixels)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 1024))
        + _chunk(b"IEND", b"")
    )


def distinct_png(n: int) -> bytes:
    """A small PNG that differs for every n (so each is stored as its own file)."""
    return png_bytes(8 + n % 5, 8, (n * 37 % 256, n * 11 % 256, 90))


def distinct_jpeg(n: int) -> bytes:
    return jpeg_bytes(8 + n % 7, 9, (n * 13 % 256, 200, n * 29 % 256))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def clickture_lines(count: int, labels: tuple[str, ...] = ("beagle", "pug", "husky")) -> list[str]:
    return [f"{labels[i % len(labels)]}\tkey-{i}\t{b64(distinct_jpeg(i))}" for i in range(count)]


def folder_tree(root: Path, layout: dict[str, int]) -> Path:
    """root/<label>/<i>.png|jpg, `layout[label]` images per label, all distinct."""
    n = 0
    for label, count in layout.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            if n % 2:
                (root / label / f"{i}.jpg").write_bytes(distinct_jpeg(n))
            else:
                (root / label / f"{i}.png").write_bytes(distinct_png(n))
            n += 1
    return root


def zip_of(folder: Path, out: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(out, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, prefix + file.relative_to(folder).as_posix())
    return out


def tar_of(folder: Path, out: Path, mode: str = "w:gz", prefix: str = "") -> Path:
    with tarfile.open(out, mode) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.add(file, prefix + file.relative_to(folder).as_posix())
    return out


def matching_source(root: Path) -> tuple[Path, Path]:
    """Four query images Q0..Q3 and a truth CSV: Q0 -> R7, R9; Q1 -> R3; Q2 listed with
    no reference; Q3 not listed (both distractors)."""
    queries = root / "queries"
    queries.mkdir(parents=True)
    for i in range(4):
        (queries / f"Q{i}.jpg").write_bytes(distinct_jpeg(100 + i))
    truth = write_lines(
        root / "truth.csv",
        ["query_id,reference_id", "Q0,R7", "Q0,R9", "Q1,R3", "Q2,", "Q9,R1"],
    )
    return queries, truth

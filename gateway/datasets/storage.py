"""Where image bytes live: content-addressed files under the data dir, written once."""

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def image_path(data_dir: Path, sha256: str) -> Path:
    """The file of the (metadata-stripped) image whose hex SHA-256 is `sha256`."""
    # One Path built, not four: the worker builds one per image it reads.
    return Path(data_dir, "images", sha256[:2], sha256)


def store_image(data_dir: Path, data: bytes) -> tuple[str, bool]:
    """Store `data` at its content address; returns (hex SHA-256, whether this call wrote it).

    An image already stored is left alone. A new one is written to a temporary file in
    the same directory and renamed into place, so readers never see half a file and two
    imports storing the same image at once both succeed. Raises OSError (disk full...).
    """
    sha256 = hashlib.sha256(data).hexdigest()
    path = image_path(data_dir, sha256)
    if path.exists():
        return sha256, False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return sha256, True


def read_image(data_dir: Path, sha256: str) -> bytes:
    """The stored bytes of image `sha256`; raises FileNotFoundError if it is not stored."""
    return image_path(data_dir, sha256).read_bytes()


def remove_images(data_dir: Path, sha256s: Iterable[str]) -> None:
    """Delete these stored images (those already gone are ignored)."""
    for sha256 in sha256s:
        with contextlib.suppress(FileNotFoundError):
            image_path(data_dir, sha256).unlink()

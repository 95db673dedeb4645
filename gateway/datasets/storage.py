"""Where image bytes live: content-addressed files under the data dir, written once."""

from pathlib import Path


def image_path(data_dir: Path, sha256: str) -> Path:
    """The file of the (metadata-stripped) image whose hex SHA-256 is `sha256`."""
    return Path(data_dir) / "images" / sha256[:2] / sha256

"""The worker's image cache: the bytes of claimed images, read once for all services.

Every service of a run gets the same image at about the same time, so one read serves
them all; an image is held while a claimed item needs it and kept a little after, among
a bounded number of recent ones, so memory follows the lanes' buffers, never the dataset.
"""

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from gateway.datasets.storage import image_path
from gateway.runs.engine.store import ImageRef

# Images just sent that stay cached for the services that have not sent them yet.
RECENT_IMAGES = 1024
RECENT_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class Picture:
    data: bytes
    digest: str
    content_type: str
    truth: list[str]
    refs: int = 0


class ImageCache:
    """Bytes of the images claimed and not yet sent, plus the last few sent."""

    def __init__(self, recent: int = RECENT_IMAGES, recent_bytes: int = RECENT_BYTES) -> None:
        self._held: dict[int, Picture] = {}
        self._recent: OrderedDict[int, Picture] = OrderedDict()
        self._recent_max = recent
        self._recent_bytes_max = recent_bytes
        self._recent_bytes = 0

    def known(self) -> set[int]:
        return set(self._held) | set(self._recent)

    def hold(self, image_id: int, loaded: Picture | None) -> bool:
        """Take a reference to an image, cached or just `loaded`; False if neither."""
        picture = self._held.get(image_id)
        if picture is None:
            picture = self._recent.pop(image_id, None)
            if picture is not None:
                self._recent_bytes -= len(picture.data)
            else:
                picture = loaded
        if picture is None:
            return False
        picture.refs += 1
        self._held[image_id] = picture
        return True

    def get(self, image_id: int) -> Picture | None:
        return self._held.get(image_id)

    def release(self, image_id: int) -> None:
        picture = self._held.get(image_id)
        if picture is None:
            return
        picture.refs -= 1
        if picture.refs <= 0:
            del self._held[image_id]
            self._recent[image_id] = picture
            self._recent_bytes += len(picture.data)
            while self._recent and (
                len(self._recent) > self._recent_max or self._recent_bytes > self._recent_bytes_max
            ):
                _, dropped = self._recent.popitem(last=False)
                self._recent_bytes -= len(dropped.data)


def load_pictures(
    data_dir: Path, refs: list[ImageRef]
) -> tuple[dict[int, Picture], dict[int, str]]:
    """Read image files (in a database thread); returns the pictures, and for each image
    that cannot be read, why."""
    pictures: dict[int, Picture] = {}
    missing: dict[int, str] = {}
    for ref in refs:
        path = image_path(data_dir, ref.sha256)
        try:
            data = path.read_bytes()
        except OSError as exc:
            missing[ref.image_id] = f"{path}: {exc.strerror or exc}"
            continue
        # The file is named by the SHA-256 of its bytes: no need to hash it again.
        pictures[ref.image_id] = Picture(data, ref.sha256, ref.content_type, ref.truth)
    return pictures, missing

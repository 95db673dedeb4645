"""The relay's memory of images it has already checked, by SHA-256.

Pillow's check of even a tiny PNG (open, read the chunks, verify) cost some 17 µs of
the event loop per relayed request: a tenth of the hub's whole share of a relay at
concurrency 16 (SPEC §8). A team debugging or benchmarking sends the same picture again
and again; its bytes are hashed anyway (the request's signature covers the SHA-256),
so a picture seen and accepted before is not opened again. Only accepted pictures are
kept, with their kind and size: the limits are checked again on every hit, so a
smaller `max_pixels` refuses a picture it accepted before. Bounded: past
`MAX_ENTRIES` the memory starts again empty.
"""

from gateway.images import CheckedImage, check_image

MAX_ENTRIES = 1024


class CheckedImages:
    """SHA-256 hex digest -> (content type, width, height) of images `check_image` accepted."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._seen: dict[str, tuple[str, int, int]] = {}

    def known(
        self, data: bytes, digest: str, *, max_bytes: int, max_pixels: int
    ) -> CheckedImage | None:
        """The checked image if these bytes were accepted before and still fit the limits."""
        seen = self._seen.get(digest)
        if seen is None:
            return None
        content_type, width, height = seen
        if len(data) > max_bytes or width * height > max_pixels:
            return None  # check_image says why
        return CheckedImage(data, content_type, width, height)

    def check(self, data: bytes, digest: str, *, max_bytes: int, max_pixels: int) -> CheckedImage:
        """`check_image`, remembered when it accepts; raises ImageRejected as it does."""
        image = check_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
        self.remember(digest, image)
        return image

    def remember(self, digest: str, image: CheckedImage) -> None:
        if len(self._seen) >= self.max_entries:
            self._seen.clear()
        self._seen[digest] = (image.content_type, image.width, image.height)

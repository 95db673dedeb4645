"""The relay's memory of accepted images: the same bytes skip Pillow, never a limit."""

import hashlib

import pytest

from gateway.images import ImageTooLarge, NotAnImage
from gateway.relay.image_verdicts import CheckedImages
from tests.builders import png_bytes


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_an_accepted_image_is_known_by_its_digest_with_its_kind_and_size() -> None:
    images = CheckedImages()
    data = png_bytes(20, 10)
    assert images.known(data, digest(data), max_bytes=10**6, max_pixels=10**6) is None

    images.check(data, digest(data), max_bytes=10**6, max_pixels=10**6)
    known = images.known(data, digest(data), max_bytes=10**6, max_pixels=10**6)

    assert known is not None
    assert (known.data, known.content_type, known.width, known.height) == (
        data,
        "image/png",
        20,
        10,
    )


def test_a_known_image_over_a_tighter_limit_is_checked_again_and_refused() -> None:
    images = CheckedImages()
    data = png_bytes(20, 10)
    images.check(data, digest(data), max_bytes=10**6, max_pixels=10**6)

    assert images.known(data, digest(data), max_bytes=10**6, max_pixels=100) is None
    assert images.known(data, digest(data), max_bytes=10, max_pixels=10**6) is None
    with pytest.raises(ImageTooLarge):
        images.check(data, digest(data), max_bytes=10**6, max_pixels=100)


def test_a_refused_body_is_not_remembered() -> None:
    images = CheckedImages()
    junk = b"not an image"
    with pytest.raises(NotAnImage):
        images.check(junk, digest(junk), max_bytes=10**6, max_pixels=10**6)

    assert images.known(junk, digest(junk), max_bytes=10**6, max_pixels=10**6) is None


def test_the_memory_stays_bounded() -> None:
    images = CheckedImages(max_entries=3)
    pictures = [png_bytes(8 + n, 8) for n in range(10)]
    for data in pictures:
        images.check(data, digest(data), max_bytes=10**6, max_pixels=10**6)

    known = [images.known(d, digest(d), max_bytes=10**6, max_pixels=10**6) for d in pictures]
    assert known[-1] is not None
    assert sum(k is not None for k in known) <= 3

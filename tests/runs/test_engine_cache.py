"""The worker's image cache: one read serves every service, memory stays bounded."""

from gateway.runs.engine.images import ImageCache, Picture


def picture(size: int) -> Picture:
    return Picture(b"x" * size, "digest", "image/png", ["label"])


def test_images_are_held_while_claimed_and_kept_briefly_after() -> None:
    cache = ImageCache(recent=2, recent_bytes=1000)
    assert not cache.hold(1, None)  # neither cached nor loaded
    assert cache.hold(1, picture(10))
    assert cache.hold(1, None)  # a second service's claim of the same image
    cache.release(1)
    assert cache.get(1) is not None and cache.known() == {1}
    cache.release(1)
    assert cache.get(1) is None and cache.known() == {1}  # recent, not held
    assert cache.hold(1, None)  # back from the recent ones, no read
    cache.release(1)
    for image_id in (2, 3):
        cache.hold(image_id, picture(10))
        cache.release(image_id)
    assert cache.known() == {2, 3}  # at most two recent images


def test_recent_images_are_bounded_in_bytes() -> None:
    cache = ImageCache(recent=100, recent_bytes=250)
    for image_id in range(5):
        cache.hold(image_id, picture(100))
    for image_id in range(5):
        cache.release(image_id)
    assert cache.known() == {3, 4}
    cache.hold(9, picture(1000))  # held images are never dropped, whatever their size
    assert cache.get(9) is not None
    cache.release(9)
    assert cache.known() == set()

"""The demo backend and its image generator: colours anyone can check by eye.

`make_demo_image` paints a noisy picture dominated by one palette colour, with a few
small patches of other colours; `recognize_demo` ranks the palette by distance to the
picture's mean colour. They agree on most images but not all, which is what a demo
leaderboard needs: a labelled dataset whose labels follow from the pixels, and a
recognizer that is good without being perfect.
"""

import asyncio
import io
import math
import random

from PIL import Image, ImageChops, ImageDraw, ImageStat, UnidentifiedImageError

from gateway.protocol.result_string import Tag, format_result, rank
from sample_recognizer.backends.base import BackendError

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (245, 230, 40),
    "cyan": (30, 210, 220),
    "magenta": (220, 40, 200),
    "orange": (250, 130, 0),
    "purple": (130, 30, 150),
}

_LIGHTING = 25  # per-channel shift of the whole picture
_NOISE = 40  # per-pixel noise amplitude, zero-mean
_SCORE_SCALE = 100.0  # distance at which the score falls to 1/e


def _clamp(value: int) -> int:
    return max(0, min(255, value))


def make_demo_image(
    label: str,
    rng: random.Random,
    size: tuple[int, int] = (48, 48),
    *,
    image_format: str = "PNG",
) -> bytes:
    """A PNG (or `image_format`, e.g. "JPEG") whose dominant colour is PALETTE[label].

    The same `rng` state gives the same bytes. Raises ValueError for a label that is
    not in PALETTE.
    """
    if label not in PALETTE:
        raise ValueError(f"unknown label {label!r}; the palette has {', '.join(PALETTE)}")
    width, height = size
    shade = tuple(_clamp(c + rng.randint(-_LIGHTING, _LIGHTING)) for c in PALETTE[label])
    image = Image.new("RGB", size, shade)
    draw = ImageDraw.Draw(image)
    others = [name for name in PALETTE if name != label]
    for _ in range(rng.randint(1, 4)):
        w = rng.randint(max(1, width // 12), max(1, width * 2 // 5))
        h = rng.randint(max(1, height // 12), max(1, height * 2 // 5))
        x, y = rng.randrange(width - w + 1), rng.randrange(height - h + 1)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x, y, x + w - 1, y + h - 1), fill=PALETTE[rng.choice(others)])
    # Uniform noise in [-_NOISE, _NOISE] per channel, built in C rather than per pixel.
    noise = Image.frombytes("RGB", size, rng.randbytes(width * height * 3))
    noise = noise.point(lambda v: v * 2 * _NOISE // 255)
    image = ImageChops.add(image, noise, offset=-_NOISE)
    out = io.BytesIO()
    image.save(out, format=image_format)
    return out.getvalue()


def recognize_demo(image_bytes: bytes) -> list[Tag]:
    """Every palette name, ranked by how close its colour is to the image's mean colour;
    scores in (0, 1], best first. Raises ValueError when the bytes are not an image."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            image.draft("RGB", (64, 64))  # JPEG: decode at a reduced size, much faster
            mean = ImageStat.Stat(image.convert("RGB")).mean
    except UnidentifiedImageError:
        raise ValueError(f"the body ({len(image_bytes)} bytes) is not an image") from None
    except OSError as exc:
        raise ValueError(f"the image cannot be decoded: {exc}") from None
    scored = []
    for name, colour in sorted(PALETTE.items(), key=lambda item: math.dist(mean, item[1])):
        scored.append(Tag(name, round(math.exp(-math.dist(mean, colour) / _SCORE_SCALE), 4)))
    return rank(scored)


class DemoBackend:
    name = "demo"

    async def recognize(self, image: bytes) -> str:
        try:
            tags = await asyncio.to_thread(recognize_demo, image)
        except ValueError as exc:
            raise BackendError(
                str(exc), status=400, todo="send an image, e.g. one of `recoghub demo`'s"
            ) from None
        return format_result(tags)

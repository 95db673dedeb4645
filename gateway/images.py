"""Image validation and metadata stripping with Pillow, shared by relay and dataset import.

Errors::

    ImageRejected (ValueError)
     ├── NotAnImage           the bytes are not a JPEG or PNG Pillow can decode -> 415
     └── ImageTooLarge        too many bytes, or a decompression bomb -> 413
"""

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}


class ImageRejected(ValueError):
    """An image the hub will not store or send."""


class NotAnImage(ImageRejected):
    pass


class ImageTooLarge(ImageRejected):
    pass


# The setting that bounds an image's bytes, named in every refusal of a large image.
MAX_IMAGE_SETTING = "RECOGHUB_MAX_IMAGE_BYTES"


def megabytes(size: int) -> str:
    """`size` bytes in decimal megabytes with one decimal ("52.4 MB"); under a megabyte
    in kilobytes ("65.5 kB"), so that a small limit does not read "0.0 MB"."""
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def too_large_text(size: int | None, max_bytes: int) -> str:
    """Why an image of `size` bytes (None: not declared, seen passing the limit) is
    refused: in MB, with the setting that sets the limit and its exact value."""
    what = "image is over" if size is None else f"image is {megabytes(size)}, over"
    return (
        f"{what} the hub's limit of {megabytes(max_bytes)} "
        f"({MAX_IMAGE_SETTING}={max_bytes}, set by the organizer)"
    )


@dataclass(frozen=True, slots=True)
class CheckedImage:
    data: bytes
    content_type: str
    width: int
    height: int


def check_image(data: bytes, *, max_bytes: int, max_pixels: int) -> CheckedImage:
    """Validate `data` as a JPEG or PNG within the limits; raises ImageRejected saying why."""
    if len(data) > max_bytes:
        raise ImageTooLarge(too_large_text(len(data), max_bytes))
    if not data:
        raise NotAnImage("the body is empty, expected JPEG or PNG bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageTooLarge(
                        f"image is {width}x{height} pixels, over the {max_pixels}-pixel limit"
                    )
                kind = img.format or ""
                img.verify()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise NotAnImage("not a JPEG or PNG image Pillow can read (unknown format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise NotAnImage(f"not a JPEG or PNG image Pillow can read: {exc}") from None
    if kind not in CONTENT_TYPES:
        raise NotAnImage(f"image format {kind or 'unknown'} is not accepted; send JPEG or PNG")
    return CheckedImage(data, CONTENT_TYPES[kind], width, height)


def strip_metadata(image: CheckedImage) -> CheckedImage:
    """The same picture without EXIF, comments, ICC or text chunks (done once, at import).

    JPEG is re-encoded at high quality; PNG losslessly. Orientation from EXIF is applied
    first so the recognizer sees the picture the way a person would.
    """
    from PIL import ImageOps

    with Image.open(io.BytesIO(image.data)) as img:
        img.load()
        fmt = img.format or "PNG"
        clean = ImageOps.exif_transpose(img)
        if clean is None:
            clean = img
        if fmt == "JPEG" and clean.mode not in ("RGB", "L"):
            clean = clean.convert("RGB")
        out = io.BytesIO()
        if fmt == "JPEG":
            # Pillow carries the JPEG comment over unless told otherwise.
            clean.save(out, format="JPEG", quality=95, comment=b"", icc_profile=None)
        else:
            clean.save(out, format="PNG", icc_profile=None)
    width, height = clean.size
    return CheckedImage(out.getvalue(), CONTENT_TYPES[fmt], width, height)

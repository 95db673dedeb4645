"""The images a `recog` asks for: files as given, directories searched recursively.

Each image is checked here before it is sent — does it exist, can it be read, does it
start like a JPEG or PNG — so a typo or a stray text file is named without bothering
the hub. The hub still decodes what it receives (and answers 415 if it cannot).
"""

from dataclasses import dataclass
from pathlib import Path

from cmdline_tool.errors import CliError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SIGNATURES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


@dataclass(frozen=True)
class ImageFile:
    path: Path
    name: str  # as the user will recognize it in the output


def collect(arguments: list[Path]) -> tuple[list[ImageFile], bool]:
    """The images named by `arguments`, and whether any argument was a directory.

    A file is taken whatever its name (it is checked when sent); a directory gives its
    .jpg/.jpeg/.png files, recursively, in name order. Raises CliError for a path that
    does not exist or a directory without images.
    """
    images: list[ImageFile] = []
    seen: set[Path] = set()
    any_directory = False
    for argument in arguments:
        if argument.is_dir():
            any_directory = True
            found = sorted(
                p for p in argument.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            if not found:
                raise CliError(
                    "local",
                    "no_images",
                    f"no .jpg, .jpeg or .png images under {argument}",
                    "pass a directory that holds images, or the image files themselves",
                )
        elif argument.exists():
            found = [argument]
        else:
            raise CliError(
                "local",
                "file_not_found",
                f"no such file or directory: {argument}",
                "check the path",
            )
        for path in found:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                images.append(ImageFile(path, str(path)))
    return images, any_directory


def read_image(image: ImageFile) -> tuple[bytes, str]:
    """The bytes and content type of `image`; CliError if unreadable or not JPEG/PNG."""
    try:
        data = image.path.read_bytes()
    except OSError as exc:
        raise CliError(
            "local",
            "unreadable",
            f"cannot read the file ({exc.strerror or exc})",
            "check the file and its permissions",
        ) from None
    for signature, content_type in _SIGNATURES.items():
        if data.startswith(signature):
            return data, content_type
    raise CliError(
        "local",
        "not_an_image",
        "not a JPEG or PNG image (checked here, not sent)",
        "pass .jpg, .jpeg or .png images",
    )

"""A phase's images as a streamed zip (SPEC §13): each image under its opaque id, with
`images.csv` (`image_id,file`: the file's path in the zip, in the order an `ilsvrc` file
follows) and `labels.txt` (a classification phase's label list; `references.txt`, the
reference ids, for a matching one). Keys, the images' labels and the split are never in it.

The zip is written as it is sent: `zipfile` writes to a sink that the response drains
after each member (data descriptors, as for any unseekable output), so memory holds one
image at a time whatever the phase's size. Images are stored, not deflated: they are
JPEG and PNG, compressed already, and were stripped of metadata at import
(gateway.images).
"""

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

from gateway.auth import Principal
from gateway.challenges.models import Challenge, ChallengePhase, PhaseKind
from gateway.challenges.phase_images import PhaseImages
from gateway.challenges.service import is_enrolled
from gateway.challenges.submissions import check_window
from gateway.datasets.storage import read_image
from gateway.db import utcnow
from gateway.errors import Forbidden

_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png"}
# A zip's timestamps: fixed, so a phase's zip is the same bytes every time.
_DATE = (2020, 1, 1, 0, 0, 0)


def check_download(*, principal: Principal, challenge: Challenge, phase: ChallengePhase) -> None:
    """Raise Forbidden unless the caller may download the phase's images (an enrolled
    team or the organizer, an offline or both phase), OutsideWindow unless it is open."""
    principal.require_caller()
    if phase.kind == PhaseKind.LIVE:
        raise Forbidden(
            f"phase {phase.name} takes live runs only (kind live): its images are never "
            "downloadable",
            code="live_only_phase",
        )
    if not principal.is_admin and not (
        principal.provider_id is not None
        and is_enrolled(challenge, provider_id=principal.provider_id)
    ):
        raise Forbidden(f"your team is not enrolled in {challenge.slug}")
    check_window(phase, now=utcnow())


class _Sink(io.RawIOBase):
    """What zipfile writes, kept until the response takes it."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def file_name(image_id: str, content_type: str) -> str:
    return image_id + _EXTENSIONS.get(content_type, ".bin")


def zip_chunks(images: PhaseImages, *, data_dir: Path) -> Iterator[bytes]:
    """The zip's bytes, a member at a time (a sync iterator: Starlette runs it in a
    thread, so the file reads block no request)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        index = ["image_id,file"]
        for image in images.images:
            name = "images/" + file_name(image.opaque, image.content_type)
            index.append(f"{image.opaque},{name}")
            info = zipfile.ZipInfo(name, date_time=_DATE)
            archive.writestr(info, read_image(data_dir, image.sha256))
            yield sink.take()
        archive.writestr(zipfile.ZipInfo("images.csv", date_time=_DATE), "\n".join(index) + "\n")
        listed = "references.txt" if images.kind == "matching" else "labels.txt"
        text = "".join(label + "\n" for label in images.labels)
        archive.writestr(zipfile.ZipInfo(listed, date_time=_DATE), text)
    yield sink.take()

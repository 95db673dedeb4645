"""A phase's images as a team downloading them sees them (SPEC §13): opaque ids, the
label list, the references a query may be matched to — and, on the hub's side only, the
dataset image and true tags behind each id.

An image's opaque id is an HMAC of its dataset image id keyed by the phase (its id and
its split seed, which teams never see): stable for the phase, different in every phase,
and telling nothing of the image's key, file name, label or part.

`labels.txt` is the dataset's distinct true tags (classification), sorted; the
references of a matching phase are likewise the distinct true tags (the hub keeps no
reference images of its own). A label list that is the set of labels used is what
ILSVRC published too; it names no image's label.
"""

import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.challenges.models import ChallengePhase
from gateway.datasets.models import Dataset, DatasetImage
from gateway.offline.answers import Catalogue
from gateway.offline.knn import DEFAULT_K

_ID_HEX = 20  # 80 bits: no collision among a phase's images in practice


def opaque_id(phase: ChallengePhase, image_id: int) -> str:
    key = f"recoghub-phase-image:{phase.id}:{phase.split_seed}".encode()
    return hmac.new(key, str(image_id).encode(), hashlib.sha256).hexdigest()[:_ID_HEX]


@dataclass(frozen=True)
class PhaseImage:
    """One image of the phase: its dataset row id, opaque id, stored file, true tags."""

    image_id: int
    opaque: str
    sha256: str
    content_type: str
    truth: list[str]


@dataclass(frozen=True)
class PhaseImages:
    images: list[PhaseImage]
    kind: str  # the dataset's: classification or matching
    labels: list[str]

    @property
    def catalogue(self) -> Catalogue:
        opaque = [image.opaque for image in self.images]
        if self.kind == "matching":
            return Catalogue(image_ids=opaque, reference_ids=self.labels)
        return Catalogue(image_ids=opaque, labels=self.labels)

    @property
    def truth(self) -> list[list[str]]:
        return [image.truth for image in self.images]


def phase_k(phase: ChallengePhase) -> int:
    """The nearest references per query of an isc-descriptors file (SPEC §13)."""
    return phase.k if phase.k is not None else DEFAULT_K


def phase_images(session: Session, *, phase: ChallengePhase) -> PhaseImages:
    """The phase's images in `images.csv` order (the dataset's)."""
    dataset = session.get(Dataset, phase.dataset_id)
    kind = dataset.kind if dataset is not None else "classification"
    rows = session.execute(
        select(DatasetImage.id, DatasetImage.sha256, DatasetImage.content_type, DatasetImage.truth)
        .where(DatasetImage.dataset_id == phase.dataset_id)
        .order_by(DatasetImage.position, DatasetImage.id)
    ).all()
    images = [
        PhaseImage(row.id, opaque_id(phase, row.id), row.sha256, row.content_type, row.truth or [])
        for row in rows
    ]
    labels = sorted({tag for image in images for tag in image.truth})
    return PhaseImages(images=images, kind=kind, labels=labels)

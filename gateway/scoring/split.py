"""The public/private split of a challenge phase's images (SPEC §12).

An image is public when a hash of (seed, image id) falls under the public fraction: fixed
by the seed chosen when the phase is created, the same in every process and every run of
the phase, and independent of the order of the images. Nothing about it is stored per
image; the worker and the readers compute it.
"""

import hashlib
from dataclasses import dataclass

_SCALE = float(2**64)


def hash_unit(seed: int, image_id: int) -> float:
    """A number in [0, 1) fixed by (seed, image id), uniform over images."""
    digest = hashlib.blake2b(f"{seed}:{image_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


@dataclass(frozen=True, slots=True)
class Split:
    seed: int
    public_fraction: float

    def is_public(self, image_id: int) -> bool:
        return hash_unit(self.seed, image_id) < self.public_fraction

    def part_of(self, image_id: int) -> str:
        """`public` or `private` (the values of gateway.runs.models.Part)."""
        return "public" if self.is_public(image_id) else "private"

    @classmethod
    def of(cls, seed: int | None, public_fraction: float | None) -> "Split | None":
        """The split of a run's columns; None when the run is not split (no seed, or every
        image public)."""
        if seed is None or public_fraction is None or public_fraction >= 1.0:
            return None
        return cls(seed, public_fraction)

"""What a phase offers a file to answer, and a parsed file's answers in compact form.

`Catalogue` is the phase's side: its image ids in `images.csv` order (opaque ids, never
keys), its label list (`labels.txt`) and, for an Image Similarity phase, the reference
ids a query may be matched to. `RankedAnswers` is the file's side once validated: every
(image, tag, score) as three numpy arrays, grouped by image and ranked best first, so a
file of 500,000 rows costs 24 bytes a row rather than a Python tuple each.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

from gateway.protocol.result_string import tag_key


@dataclass(frozen=True)
class Catalogue:
    """The ids a prediction file may name. Ids are compared exactly (they are opaque);
    labels by `tag_key`, as tags are everywhere (SPEC §2)."""

    image_ids: Sequence[str]
    labels: Sequence[str] = ()
    reference_ids: Sequence[str] = ()

    @cached_property
    def image_index(self) -> dict[str, int]:
        """Image id -> its 0-based place in `image_ids`."""
        return {image_id: i for i, image_id in enumerate(self.image_ids)}

    @cached_property
    def reference_index(self) -> dict[str, int]:
        """Reference id -> its 0-based place in `reference_ids`."""
        return {ref: i for i, ref in enumerate(self.reference_ids)}

    @cached_property
    def label_index(self) -> dict[str, int]:
        """`tag_key` of a label -> its 0-based place in `labels` (the first of equals)."""
        index: dict[str, int] = {}
        for i, label in enumerate(self.labels):
            index.setdefault(tag_key(label), i)
        return index


Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class RankedAnswers:
    """A file's answers: image i answered `tag_names[tags[j]]` with `scores[j]` for j in
    `starts[i]:starts[i + 1]`, best first. An image not `answered` was left out of the
    file (outcome `missed`); answered with no entries, it abstained. `has_scores` is
    False for `ilsvrc`, whose predictions are an order without scores."""

    tag_names: Sequence[str]
    starts: Ints
    tags: Ints
    scores: Floats
    answered: Flags
    has_scores: bool = True

    @property
    def images(self) -> int:
        return len(self.answered)


@dataclass
class AnswersBuilder:
    """Collects (image, tag, score) entries in any order; `finish()` groups them by image
    and ranks each image's entries by score descending, keeping the file's order on equal
    scores (§2)."""

    images: int
    tag_names: Sequence[str]
    has_scores: bool = True
    _image: list[int] = field(default_factory=list, init=False)
    _tag: list[int] = field(default_factory=list, init=False)
    _score: list[float] = field(default_factory=list, init=False)
    _answered: Flags = field(init=False)

    def __post_init__(self) -> None:
        self._answered = np.zeros(self.images, dtype=np.bool_)
        # Python lists are flushed into numpy chunks so a long file stays compact.
        self._chunks: list[tuple[Ints, Ints, Floats]] = []

    def answer(self, image: int) -> None:
        """Mark image `image` as answered (with or without entries)."""
        self._answered[image] = True

    def mark_answered(self, images: Ints) -> None:
        """Mark every image of `images` as answered."""
        self._answered[images] = True

    def is_answered(self, image: int) -> bool:
        return bool(self._answered[image])

    def add(self, image: int, tag: int, score: float) -> None:
        self._image.append(image)
        self._tag.append(tag)
        self._score.append(score)
        if len(self._image) >= 65_536:
            self._flush()

    def add_arrays(self, images: Ints, tags: Ints, scores: Floats) -> None:
        """Add entries given as arrays of equal length; their images are answered."""
        self._flush()
        self._answered[images] = True
        self._chunks.append(
            (images.astype(np.int64), tags.astype(np.int64), scores.astype(np.float64))
        )

    def _flush(self) -> None:
        if self._image:
            self._chunks.append(
                (
                    np.array(self._image, dtype=np.int64),
                    np.array(self._tag, dtype=np.int64),
                    np.array(self._score, dtype=np.float64),
                )
            )
            self._image, self._tag, self._score = [], [], []

    def arrays(self) -> tuple[Ints, Ints, Floats]:
        """Every entry so far, in the order added."""
        self._flush()
        if not self._chunks:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy(), np.zeros(0, dtype=np.float64)
        images = np.concatenate([chunk[0] for chunk in self._chunks])
        tags = np.concatenate([chunk[1] for chunk in self._chunks])
        scores = np.concatenate([chunk[2] for chunk in self._chunks])
        self._chunks = [(images, tags, scores)]
        return images, tags, scores

    def finish(self) -> RankedAnswers:
        images, tags, scores = self.arrays()
        # lexsort is stable: equal (image, score) keep the order they were added in.
        order = np.lexsort((-scores, images))
        images = images[order]
        starts = np.searchsorted(images, np.arange(self.images + 1)).astype(np.int64)
        return RankedAnswers(
            tag_names=self.tag_names,
            starts=starts,
            tags=tags[order],
            scores=scores[order],
            answered=self._answered,
            has_scores=self.has_scores,
        )

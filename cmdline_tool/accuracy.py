"""Top-1 and top-5 accuracy of `recog --labels` on a labelled folder (`DIR/<label>/<file>`,
the ImageNet layout the hub imports as format `folder`).

Matched as the hub scores (SPEC §6), by its one ranking of tags (`gateway.scoring.ranking`):
tags and labels compared after trimming white space and Unicode case folding; an image
whose request failed counts as wrong.
"""

from dataclasses import dataclass
from pathlib import Path

from cmdline_tool.errors import CliError
from cmdline_tool.images import ImageFile
from cmdline_tool.recog import Recognition
from gateway.scoring.display import percent
from gateway.scoring.ranking import true_rank


def folder_label(image: ImageFile, roots: list[Path]) -> str | None:
    """The label of `image`: the first folder below the directory argument it came from,
    or None for a file given directly or lying in the root itself."""
    path = image.path.resolve()
    for root in roots:
        try:
            parts = path.relative_to(root.resolve()).parts
        except ValueError:
            continue
        return parts[0] if len(parts) >= 2 else None
    return None


def require_labelled(images: list[ImageFile], roots: list[Path]) -> None:
    """Raise CliError when `--labels` was given but no image lies in a label folder."""
    if not roots:
        raise CliError(
            "local",
            "usage",
            "--labels needs a directory laid out DIR/<label>/<image>",
            "pass the labelled folder (one sub-folder per label) instead of files",
        )
    if not any(folder_label(image, roots) for image in images):
        raise CliError(
            "local",
            "no_labels",
            f"no image under {', '.join(map(str, roots))} lies in a label folder",
            "lay the images out DIR/<label>/<image>, one sub-folder per label",
        )


@dataclass
class Accuracy:
    """Counts of labelled images and of those right at top-1 and top-5."""

    roots: list[Path]
    images: int = 0
    top1: int = 0
    top5: int = 0
    unlabelled: int = 0

    def add(self, result: Recognition) -> None:
        label = folder_label(result.image, self.roots)
        if label is None:
            self.unlabelled += 1
            return
        self.images += 1
        if not result.ok:
            return
        rank = true_rank([tag for tag, _ in result.tags], [label])
        self.top1 += rank == 1
        self.top5 += rank is not None and rank <= 5

    def as_json(self) -> dict[str, object]:
        def share(n: int) -> float | None:
            return round(n / self.images, 6) if self.images else None

        return {
            "type": "accuracy",
            "images": self.images,
            "top1": share(self.top1),
            "top5": share(self.top5),
            "top1_correct": self.top1,
            "top5_correct": self.top5,
            "unlabelled": self.unlabelled,
        }

    def line(self) -> str:
        if not self.images:
            return "accuracy: no labelled image"

        def pct(n: int) -> str:
            return f"{n}/{self.images} ({percent(n / self.images)})"

        extra = ""
        if self.unlabelled:
            extra = f", {self.unlabelled} image(s) outside label folders not counted"
        return (
            f"accuracy on {self.images} labelled images: top-1 {pct(self.top1)}, "
            f"top-5 {pct(self.top5)}{extra}"
        )

"""Per-class figures of one service in a run (SPEC §3 `GET /runs/{id}/services/{guid}/classes`):
for each true label, how many images, how many right at top-1 and top-5, and what the
service answered instead (the most frequent wrong top-1 tags, a confusion summary).

Tags are compared by `tag_key`, as the metrics do (gateway.scoring.metrics): `Cat` and
`cat ` are one label, shown as first spelled in the run's order (a wrong tag: as the
service first spelled it). An image with several true tags (matching) counts under
each. An answer that is not `ok` counts as an image, wrong at top-1 and top-5.
"""

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from gateway.errors import Outcome
from gateway.runs.finish import done_items
from gateway.runs.models import IMAGES, WORK_ITEMS
from gateway.scoring.ranking import tag_key, true_rank

WRONG_TAGS = 3


@dataclass
class ClassFigures:
    label: str
    images: int = 0
    top1: int = 0
    top5: int = 0
    failed: int = 0
    wrong: Counter[str] = field(default_factory=Counter)

    def most_wrong(self, spelling: dict[str, str]) -> list[tuple[str, int]]:
        """The WRONG_TAGS most frequent wrong top-1 tags, ties by tag."""
        ranked = sorted(self.wrong.items(), key=lambda kv: (-kv[1], kv[0]))[:WRONG_TAGS]
        return [(spelling[key], n) for key, n in ranked]


def class_figures(
    session: Session, *, run_service_id: int
) -> list[tuple[ClassFigures, list[tuple[str, int]]]]:
    """Every true label of the run service's recorded images, by label key, with its most
    frequent wrong top-1 tags."""
    classes: dict[str, ClassFigures] = {}
    spelling: dict[str, str] = {}
    for row in done_items(
        session.connection(),
        run_service_id=run_service_id,
        columns=[IMAGES.c.truth, WORK_ITEMS.c.outcome, WORK_ITEMS.c.tags],
    ):
        truth = [str(t) for t in row.truth or ()]
        ok = row.outcome == Outcome.OK
        tags = [str(tag) for tag, _ in row.tags or ()] if ok else []
        rank = true_rank(tags, truth)
        top = tags[0] if tags else None
        for label_key in dict.fromkeys(k for k in map(tag_key, truth) if k):
            figures = classes.get(label_key)
            if figures is None:
                original = next(t for t in truth if tag_key(t) == label_key)
                figures = classes[label_key] = ClassFigures(label=original.strip())
            figures.images += 1
            figures.failed += not ok
            figures.top1 += rank == 1
            figures.top5 += rank is not None and rank <= 5
            if top is not None and rank != 1:
                wrong = tag_key(top)
                spelling.setdefault(wrong, top.strip())
                figures.wrong[wrong] += 1
    return [(classes[k], classes[k].most_wrong(spelling)) for k in sorted(classes)]

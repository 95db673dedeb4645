"""Live scores for the run services of runs created before 0007

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from gateway.scoring.live import LiveTally
from gateway.scoring.split import Split

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Work items read a page at a time (keyset on seq): memory stays one page big.
PAGE = 1000

# The tables as this revision has them: the models may change after it.
_RUNS = sa.table(
    "runs",
    sa.column("id", sa.Integer),
    sa.column("split_seed", sa.BigInteger),
    sa.column("public_fraction", sa.Float),
)
_RUN_SERVICES = sa.table(
    "run_services", sa.column("id", sa.Integer), sa.column("run_id", sa.Integer)
)
_IMAGES = sa.table("dataset_images", sa.column("id", sa.Integer), sa.column("truth", sa.JSON))
_ITEMS = sa.table(
    "work_items",
    sa.column("run_service_id", sa.Integer),
    sa.column("seq", sa.Integer),
    sa.column("image_id", sa.Integer),
    sa.column("state", sa.String),
    sa.column("outcome", sa.String),
    sa.column("tags", sa.JSON),
    sa.column("latency_ms", sa.Float),
    sa.column("attempts", sa.Integer),
    sa.column("finished_at", sa.DateTime),
)
_COUNTERS = [
    sa.column("images_total", sa.Integer),
    sa.column("images", sa.Integer),
    sa.column("outcomes", sa.JSON),
    sa.column("with_truth", sa.Integer),
    sa.column("true_pairs", sa.Integer),
    sa.column("top1", sa.Integer),
    sa.column("top5", sa.Integer),
    sa.column("latency_count", sa.Integer),
    sa.column("latency_sum", sa.Float),
    sa.column("latency_max", sa.Float),
    sa.column("latency_min", sa.Float),
    sa.column("latency_buckets", sa.JSON),
    sa.column("first_finished_at", sa.DateTime),
    sa.column("first_sent_at", sa.DateTime),
    sa.column("last_finished_at", sa.DateTime),
]
_LIVE = sa.table(
    "live_scores",
    sa.column("run_service_id", sa.Integer),
    sa.column("run_id", sa.Integer),
    *[sa.column(c.name, c.type) for c in _COUNTERS],
)
_PARTS = sa.table(
    "live_score_parts",
    sa.column("run_service_id", sa.Integer),
    sa.column("part", sa.String),
    sa.column("run_id", sa.Integer),
    *[sa.column(c.name, c.type) for c in _COUNTERS],
)


# Data only. Until 0012 a run service without live scores (its run was created before
# 0007) had its progress and leaderboard read from its work items by a second code path
# (`runs/progress_legacy.py`, now gone). Here each such service gets the row the worker
# would have kept, counted by the worker's own tally (`LiveTally.add`, over the one
# ranking of `gateway.scoring.ranking`) from its recorded items, and a split run's
# service its part rows. A result recorded without being sent (attempts 0) adds no
# finish time, as `record_unsent` counts it. Passed and failed services keep their
# stored full rescore, which the leaderboard shows as before.
def upgrade() -> None:
    conn = op.get_bind()
    has_live = sa.exists().where(_LIVE.c.run_service_id == _RUN_SERVICES.c.id)
    services = conn.execute(
        sa.select(
            _RUN_SERVICES.c.id, _RUN_SERVICES.c.run_id, _RUNS.c.split_seed, _RUNS.c.public_fraction
        )
        .join(_RUNS, _RUNS.c.id == _RUN_SERVICES.c.run_id)
        .where(~has_live)
        .order_by(_RUN_SERVICES.c.id)
    ).all()
    for service in services:
        split = Split.of(service.split_seed, service.public_fraction)
        _backfill(conn, run_service_id=service.id, run_id=service.run_id, split=split)


def _backfill(
    conn: sa.Connection, *, run_service_id: int, run_id: int, split: Split | None
) -> None:
    whole = LiveTally()
    total = 0
    parts: dict[str, LiveTally] = {"public": LiveTally(), "private": LiveTally()}
    part_totals = dict.fromkeys(parts, 0)
    for item in _items(conn, run_service_id):
        total += 1
        tallies = [whole]
        if split is not None:
            part = split.part_of(item.image_id)
            part_totals[part] += 1
            tallies.append(parts[part])
        if item.state != "done" or item.outcome is None:  # not recorded (yet)
            continue
        for tally in tallies:
            tally.add(
                outcome=item.outcome,
                tags=item.tags,
                truth=[str(tag) for tag in item.truth or ()],
                latency_ms=item.latency_ms,
                finished_at=item.finished_at if item.attempts else None,
            )
    keys = {"run_service_id": run_service_id, "run_id": run_id}
    conn.execute(_LIVE.insert().values(**keys, images_total=total, **whole.columns()))
    has_parts = conn.execute(
        sa.select(sa.func.count())
        .select_from(_PARTS)
        .where(_PARTS.c.run_service_id == run_service_id)
    ).scalar()
    if split is not None and not has_parts:
        conn.execute(
            _PARTS.insert(),
            [
                {**keys, "part": part, "images_total": part_totals[part], **tally.columns()}
                for part, tally in parts.items()
            ],
        )


def _items(conn: sa.Connection, run_service_id: int) -> Iterator[Any]:
    """Every work item of the run service (recorded or not) with its image's true tags,
    in seq order, a page at a time."""
    last_seq = -1
    while True:
        page = conn.execute(
            sa.select(
                _ITEMS.c.seq,
                _ITEMS.c.image_id,
                _ITEMS.c.state,
                _ITEMS.c.outcome,
                _ITEMS.c.tags,
                _ITEMS.c.latency_ms,
                _ITEMS.c.attempts,
                _ITEMS.c.finished_at,
                _IMAGES.c.truth,
            )
            .join(_IMAGES, _IMAGES.c.id == _ITEMS.c.image_id)
            .where(_ITEMS.c.run_service_id == run_service_id, _ITEMS.c.seq > last_seq)
            .order_by(_ITEMS.c.seq)
            .limit(PAGE)
        ).all()
        yield from page
        if len(page) < PAGE:
            return
        last_seq = page[-1].seq


def downgrade() -> None:
    # The rows are true counts that 0012's code reads as any run's: nothing to undo.
    pass

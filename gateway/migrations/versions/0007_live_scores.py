"""Live scores kept incrementally per run service

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# A new table only. Run services of runs created before it have no row: their progress
# and leaderboard are read from their work items as before (gateway.runs.progress).
def upgrade() -> None:
    op.create_table(
        "live_scores",
        sa.Column("run_service_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("images_total", sa.Integer(), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("with_truth", sa.Integer(), nullable=False),
        sa.Column("true_pairs", sa.Integer(), nullable=False),
        sa.Column("top1", sa.Integer(), nullable=False),
        sa.Column("top5", sa.Integer(), nullable=False),
        sa.Column("latency_count", sa.Integer(), nullable=False),
        sa.Column("latency_sum", sa.Float(), nullable=False),
        sa.Column("latency_max", sa.Float(), nullable=True),
        sa.Column("latency_min", sa.Float(), nullable=True),
        sa.Column("latency_buckets", sa.JSON(), nullable=False),
        sa.Column("first_finished_at", sa.DateTime(), nullable=True),
        sa.Column("first_sent_at", sa.DateTime(), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_service_id"],
            ["run_services.id"],
            name=op.f("fk_live_scores_run_service_id_run_services"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_live_scores_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_service_id", name=op.f("pk_live_scores")),
    )
    op.create_index(op.f("ix_live_scores_run_id"), "live_scores", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_live_scores_run_id"), table_name="live_scores")
    op.drop_table("live_scores")

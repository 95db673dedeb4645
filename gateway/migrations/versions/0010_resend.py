"""Re-sending a service's items: earlier results kept as history, run_services.resent

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "run_services",
        sa.Column("resent", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_table(
        "earlier_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("run_service_id", sa.Integer(), nullable=False),
        sa.Column("work_item_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=40), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("attempt_log", sa.JSON(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("resent_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_earlier_results_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_service_id"],
            ["run_services.id"],
            name=op.f("fk_earlier_results_run_service_id_run_services"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_items.id"],
            name=op.f("fk_earlier_results_work_item_id_work_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_earlier_results")),
    )
    op.create_index(op.f("ix_earlier_results_run_id"), "earlier_results", ["run_id"], unique=False)
    op.create_index(
        op.f("ix_earlier_results_run_service_id"),
        "earlier_results",
        ["run_service_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_earlier_results_run_service_id"), table_name="earlier_results")
    op.drop_index(op.f("ix_earlier_results_run_id"), table_name="earlier_results")
    op.drop_table("earlier_results")
    op.drop_column("run_services", "resent")

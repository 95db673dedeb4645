"""Datasets open to teams; who started a run (team-started dry runs)

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite cannot add a foreign key to an existing table otherwise.
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(
            sa.Column("open_to_teams", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("started_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_runs_started_by_id_providers"),
            "providers",
            ["started_by_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_runs_started_by", ["started_by_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_started_by")
        batch.drop_constraint(op.f("fk_runs_started_by_id_providers"), type_="foreignkey")
        batch.drop_column("started_by_id")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("open_to_teams")

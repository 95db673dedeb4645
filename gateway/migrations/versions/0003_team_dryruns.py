"""Datasets open to teams; who started a run (team-started dry runs)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ADD/DROP COLUMN, no batch mode: on SQLite a batch would copy and drop `runs` and
# `datasets`, which other tables reference (refused with foreign keys on). Hence also no
# foreign key on runs.started_by_id (providers are never deleted).
def upgrade() -> None:
    op.add_column(
        "datasets",
        sa.Column("open_to_teams", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("runs", sa.Column("started_by_id", sa.Integer(), nullable=True))
    op.create_index("ix_runs_started_by", "runs", ["started_by_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_runs_started_by", table_name="runs")
    op.drop_column("runs", "started_by_id")
    op.drop_column("datasets", "open_to_teams")

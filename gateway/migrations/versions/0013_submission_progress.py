"""A file submission's progress while it scores (issue 19): the stage, and how far

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    sa.Column("progress_stage", sa.String(length=10), nullable=True),
    sa.Column("progress_done", sa.Integer(), nullable=True),
    sa.Column("progress_total", sa.Integer(), nullable=True),
)


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        for column in _COLUMNS:
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        for column in reversed(_COLUMNS):
            batch.drop_column(column.name)

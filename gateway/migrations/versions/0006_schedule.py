"""Evaluation window: runs.start_at and runs.deadline

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("start_at", "deadline", "stopped_at_deadline")


# Plain ADD/DROP COLUMN, no batch mode: on SQLite a batch would copy and drop `runs`,
# which other tables reference (refused with foreign keys on). SQLite >= 3.35 drops a
# column in place.
def upgrade() -> None:
    op.add_column("runs", sa.Column("start_at", sa.DateTime(), nullable=True))
    op.add_column("runs", sa.Column("deadline", sa.DateTime(), nullable=True))
    op.add_column(
        "runs",
        sa.Column("stopped_at_deadline", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    for name in reversed(_COLUMNS):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE runs DROP COLUMN {name}")
        else:
            op.drop_column("runs", name)

"""A file submission's progress while it scores (issue 19): the stage, and how far; a
team's `prediction files` service marked as such (not counted by its caps, not listed)

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
    # Plain ADD/DROP COLUMN on `services`: on SQLite a batch would copy and drop it, and
    # its instances with it (ON DELETE CASCADE).
    op.add_column(
        "services", sa.Column("files", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    # The services 0012's hub made for files: the ones holding a file submission's run.
    op.execute(
        "UPDATE services SET files = true WHERE name = 'prediction files' AND id IN "
        "(SELECT service_id FROM submissions WHERE kind = 'file' AND service_id IS NOT NULL)"
    )


def downgrade() -> None:
    op.drop_column("services", "files")
    with op.batch_alter_table("submissions") as batch:
        for column in reversed(_COLUMNS):
            batch.drop_column(column.name)

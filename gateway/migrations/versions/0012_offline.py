"""Offline submissions (issue 19): a file submission's format, state, stored file, size
and error

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    sa.Column("format", sa.String(length=20), nullable=True),
    sa.Column("state", sa.String(length=10), nullable=True),
    sa.Column("upload", sa.String(length=100), nullable=True),
    sa.Column("size", sa.BigInteger(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
)


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        for column in _COLUMNS:
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        for column in reversed(_COLUMNS):
            batch.drop_column(column.name)

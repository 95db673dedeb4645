"""Dial-out recognizers: workers.public_url, where a recognizer connects (SPEC §10)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("workers", sa.Column("public_url", sa.Text(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite >= 3.35 drops a column in place; nothing refers to this one.
        op.execute("ALTER TABLE workers DROP COLUMN public_url")
    else:
        op.drop_column("workers", "public_url")

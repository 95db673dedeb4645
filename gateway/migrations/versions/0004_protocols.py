"""Model-server protocols: services.protocol_options, and "v1" named "recoghub-v1"

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _widen_protocol(length: int, was: int) -> None:
    # SQLite does not enforce VARCHAR lengths, and changing one there means copying the
    # table, whose DROP would cascade into instances under PRAGMA foreign_keys=ON.
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "services",
            "protocol",
            existing_type=sa.String(length=was),
            type_=sa.String(length=length),
            existing_nullable=False,
        )


def upgrade() -> None:
    _widen_protocol(20, 10)
    op.add_column("services", sa.Column("protocol_options", sa.JSON(), nullable=True))
    op.execute("UPDATE services SET protocol = 'recoghub-v1' WHERE protocol = 'v1'")


def downgrade() -> None:
    op.execute("UPDATE services SET protocol = 'v1' WHERE protocol = 'recoghub-v1'")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite >= 3.35 drops a column in place; nothing refers to this one.
        op.execute("ALTER TABLE services DROP COLUMN protocol_options")
    else:
        op.drop_column("services", "protocol_options")
    _widen_protocol(10, 20)

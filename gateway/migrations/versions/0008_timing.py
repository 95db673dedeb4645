"""Latency fidelity: runs.timing_uncertainty_ms, how late the hub's event loop ran

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("timing_uncertainty_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "timing_uncertainty_ms")

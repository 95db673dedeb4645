"""Notifications (issue 20): providers' webhook URL and secret, the outbox, down intervals

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("providers", sa.Column("notification_url", sa.Text(), nullable=True))
    op.add_column(
        "providers", sa.Column("notification_secret", sa.String(length=100), nullable=True)
    )
    op.create_table(
        "service_downtimes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_service_id", sa.Integer(), nullable=False),
        sa.Column("down_at", sa.DateTime(), nullable=False),
        sa.Column("up_at", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_service_id"],
            ["run_services.id"],
            name=op.f("fk_service_downtimes_run_service_id_run_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_downtimes")),
    )
    op.create_index(
        op.f("ix_service_downtimes_run_service_id"),
        "service_downtimes",
        ["run_service_id"],
        unique=False,
    )
    op.create_table(
        "notification_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_events")),
        sa.UniqueConstraint("key", name=op.f("uq_notification_events_key")),
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["notification_events.id"],
            name=op.f("fk_notification_deliveries_event_id_notification_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_notification_deliveries_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_deliveries")),
    )
    op.create_index(
        op.f("ix_notification_deliveries_event_id"),
        "notification_deliveries",
        ["event_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_notification_deliveries_provider_id"),
        "notification_deliveries",
        ["provider_id"],
        unique=False,
    )
    op.create_index(
        "ix_notification_deliveries_due",
        "notification_deliveries",
        ["status", "next_attempt_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_notification_deliveries_due", table_name="notification_deliveries")
    op.drop_index(
        op.f("ix_notification_deliveries_provider_id"), table_name="notification_deliveries"
    )
    op.drop_index(op.f("ix_notification_deliveries_event_id"), table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
    op.drop_table("notification_events")
    op.drop_index(op.f("ix_service_downtimes_run_service_id"), table_name="service_downtimes")
    op.drop_table("service_downtimes")
    for column in ("notification_secret", "notification_url"):
        if op.get_bind().dialect.name == "sqlite":
            # In place (SQLite >= 3.35): a batch copy would drop `providers`, and with it,
            # by ON DELETE CASCADE, every service.
            op.execute(f"ALTER TABLE providers DROP COLUMN {column}")
        else:
            op.drop_column("providers", column)

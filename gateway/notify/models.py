"""Notification tables: the outbox (one event, one delivery per URL) and the down
intervals of run services (written by the breaker, read by the outbox and the charts).

    NotificationDelivery.status   pending -> sent | failed   (failed: attempts used up,
                                  or an answer that retrying cannot change)
"""

from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, utcnow


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class ServiceDowntime(Base):
    """An interval a run service was `down` (paused by the breaker, SPEC §9); `up_at`
    stays None while it is down, and when it was given up on (it failed, never came back)."""

    __tablename__ = "service_downtimes"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_service_id: Mapped[int] = mapped_column(
        ForeignKey("run_services.id", ondelete="CASCADE"), index=True
    )
    down_at: Mapped[datetime] = mapped_column(DateTime)
    up_at: Mapped[datetime | None] = mapped_column(DateTime)
    reason: Mapped[str | None] = mapped_column(Text)


class NotificationEvent(Base):
    """Something that happened, once: its unique `key` (e.g. `run:7:started`) keeps
    several processes from telling it twice."""

    __tablename__ = "notification_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class NotificationDelivery(Base):
    """One event for one URL: a provider's (`provider_id`) or the organizer's (None)."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("notification_events.id", ondelete="CASCADE"), index=True
    )
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The process sending it now; another takes it over once the lease expires.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


DOWNTIMES = cast(Table, ServiceDowntime.__table__)
EVENTS = cast(Table, NotificationEvent.__table__)
DELIVERIES = cast(Table, NotificationDelivery.__table__)

"""Registry tables: providers, services, instances, and the hub's own secrets."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.db import Base, utcnow


class Provider(Base):
    """A team. Its API key is stored only as a SHA-256 hash."""

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    guid: Mapped[str] = mapped_column(String(36), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str | None] = mapped_column(String(200))
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Where the hub posts the team's events (gateway.notify), and the HMAC key they are
    # signed with: needed in the clear to sign, it grants nothing on the hub.
    notification_url: Mapped[str | None] = mapped_column(Text)
    notification_secret: Mapped[str | None] = mapped_column(String(100))

    services: Mapped[list["Service"]] = relationship(
        back_populates="provider", cascade="all, delete-orphan", order_by="Service.id"
    )


class Service(Base):
    """One recognizer of a provider, reachable at one or more instances."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    guid: Mapped[str] = mapped_column(String(36), unique=True, index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str | None] = mapped_column(String(100))
    # How the hub talks to the instances (SPEC §11) and that protocol's options
    # (model, input, output, ...); NULL for recoghub-v1, which has none.
    protocol: Mapped[str] = mapped_column(String(20), default="recoghub-v1")
    protocol_options: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    max_concurrency: Mapped[int] = mapped_column(Integer, default=4)
    # Needed in the clear to sign requests; it authenticates the hub to the team, it
    # grants nothing on the hub.
    signing_secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # A team's `prediction files` service (SPEC §13, gateway.challenges.files): it holds
    # the runs of the team's scored files; no endpoint, never run, not in the team's list
    # of services, not counted by its caps (gateway.registry.caps), not the team's to
    # enable, change or delete.
    files: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    provider: Mapped[Provider] = relationship(back_populates="services")
    instances: Mapped[list["Instance"]] = relationship(
        back_populates="service", cascade="all, delete-orphan", order_by="Instance.position"
    )

    @property
    def endpoints(self) -> list[str]:
        return [i.url for i in self.instances]


class Instance(Base):
    """One endpoint base URL of a service."""

    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)

    service: Mapped[Service] = relationship(back_populates="instances")


class HubSecret(Base):
    """Secrets of the hub itself, e.g. the generated admin token's hash."""

    __tablename__ = "hub_secrets"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

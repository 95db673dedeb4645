"""Dataset tables. Image bytes live in files under the data dir, never in these rows."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, utcnow


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    format: Mapped[str] = mapped_column(String(20))
    # "classification" (one label per image) or "matching" (zero or more references).
    kind: Mapped[str] = mapped_column(String(20), default="classification")
    images: Mapped[int] = mapped_column(Integer, default=0)
    labels: Mapped[int] = mapped_column(Integer, default=0)
    # Teams may start dry runs on it themselves (SPEC §3); never its labels.
    open_to_teams: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DatasetImage(Base):
    """One image of a dataset: its key, its true tags and where its bytes are stored."""

    __tablename__ = "dataset_images"
    __table_args__ = (UniqueConstraint("dataset_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(300))
    truth: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Hex SHA-256 of the stripped image; the file is <data_dir>/images/<sha[:2]>/<sha>.
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(30))
    size: Mapped[int] = mapped_column(Integer)

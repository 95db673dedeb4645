"""Challenge tables (SPEC §12): challenges, the providers enrolled in them, their ordered
phases, and submissions.

A submission is what a team entered in a phase: a live run (`kind` "live", `run_id` set)
or an uploaded file (`kind` "file", SPEC §13: once scored, a run of its own holds its
per-image results, gateway.challenges.files). It keeps no scores of its own: its scores
are its run service's live scores and final rescore (gateway.runs), read by the phase
leaderboard.

    ChallengePhase  open (opens_at <= now < closes_at) -> closed (closed_at set: final
                    ranking frozen) -> published (published_at set: teams see it)
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.db import Base, utcnow


class PhaseKind(StrEnum):
    LIVE = "live"
    OFFLINE = "offline"
    BOTH = "both"


class Counts(StrEnum):
    BEST = "best"
    LAST = "last"
    SELECTED = "selected"


class Visible(StrEnum):
    LIVE = "live"
    AT_CLOSE = "at_close"


class SubmissionKind(StrEnum):
    LIVE = "live"  # a run of one of the team's services
    FILE = "file"  # an uploaded prediction file (SPEC §13)


class FileState(StrEnum):
    """A file submission's scoring: accepted (it counts) -> scored, or failed (the hub
    could not finish it: the stored file gone). A live submission has none."""

    SCORING = "scoring"
    SCORED = "scored"
    FAILED = "failed"


class Challenge(Base):
    __tablename__ = "challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Readable without a token: description, phases, windows, published leaderboards.
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    # Every provider is enrolled; otherwise those of `challenge_providers`.
    all_providers: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    phases: Mapped[list["ChallengePhase"]] = relationship(
        back_populates="challenge",
        cascade="all, delete-orphan",
        order_by="ChallengePhase.position",
    )
    enrolled: Mapped[list["ChallengeProvider"]] = relationship(
        cascade="all, delete-orphan", order_by="ChallengeProvider.provider_id"
    )


class ChallengeProvider(Base):
    """A provider enrolled in a challenge that does not enrol every provider."""

    __tablename__ = "challenge_providers"

    challenge_id: Mapped[int] = mapped_column(
        ForeignKey("challenges.id", ondelete="CASCADE"), primary_key=True
    )
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )


class ChallengePhase(Base):
    __tablename__ = "challenge_phases"
    __table_args__ = (UniqueConstraint("challenge_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    kind: Mapped[str] = mapped_column(String(10), default=PhaseKind.LIVE)  # PhaseKind
    metric: Mapped[str] = mapped_column(String(30), default="top5")
    opens_at: Mapped[datetime] = mapped_column(DateTime)
    closes_at: Mapped[datetime] = mapped_column(DateTime)
    # The submission limit per team; None: no limit of that kind.
    per_day: Mapped[int | None] = mapped_column(Integer)
    per_week: Mapped[int | None] = mapped_column(Integer)
    total: Mapped[int | None] = mapped_column(Integer)
    counts: Mapped[str] = mapped_column(String(10), default=Counts.BEST)  # Counts
    selection_limit: Mapped[int] = mapped_column(Integer, default=1)
    visible: Mapped[str] = mapped_column(String(10), default=Visible.LIVE)  # Visible
    # The public part: images whose hash of (split_seed, image id) falls under the
    # fraction (gateway.scoring.split); fixed when the phase is created.
    public_fraction: Mapped[float] = mapped_column(Float, default=1.0)
    split_seed: Mapped[int] = mapped_column(BigInteger)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    baselines: Mapped[list[str]] = mapped_column(JSON, default=list)  # service GUIDs
    k: Mapped[int | None] = mapped_column(Integer)  # nearest references (SPEC §13)
    # Set once the phase is closed: the final ranking on the private part, frozen.
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    final_ranking: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    published_at: Mapped[datetime | None] = mapped_column(DateTime)

    challenge: Mapped[Challenge] = relationship(back_populates="phases")


class Submission(Base):
    """One team's entry in a phase; counts against its limit once it exists."""

    __tablename__ = "submissions"
    # The limit counts a team's submissions to a phase in a window of time.
    __table_args__ = (
        Index("ix_submissions_phase_provider", "phase_id", "provider_id", "created_at"),
        UniqueConstraint("run_id", "service_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phase_id: Mapped[int] = mapped_column(ForeignKey("challenge_phases.id", ondelete="CASCADE"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10), default=SubmissionKind.LIVE)
    # A live submission's run and service (its run service holds the scores). The
    # organizer's submission for every enrolled service is one run of them all.
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    # The organizer started it (for every enrolled service); it counts all the same.
    by_organizer: Mapped[bool] = mapped_column(Boolean, default=False)
    selected: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # A file submission (SPEC §13): its format, its state (FileState), the name of the
    # accepted file under <data_dir>/submissions until it is scored, its size, and why
    # it failed. Once scored, `run_id`/`service_id` hold its results as a run's.
    format: Mapped[str | None] = mapped_column(String(20))
    state: Mapped[str | None] = mapped_column(String(10))
    upload: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    # While it is `scoring`: the stage (`search`: descriptor queries searched, `score`:
    # images scored) and how far it is, written a few times a second at most.
    progress_stage: Mapped[str | None] = mapped_column(String(10))
    progress_done: Mapped[int | None] = mapped_column(Integer)
    progress_total: Mapped[int | None] = mapped_column(Integer)

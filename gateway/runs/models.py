"""Run tables (runs, the services in each run, work items, workers, slot leases, live
scores) and the states their rows move through.

States are `StrEnum`s: a member equals the string stored in its column, so rows read as
plain strings compare equal to members, and members are written as those strings.

    Run.state         queued -> running -> completed
                      queued|running -> cancelled | failed -> (resume) queued|running
    RunService.status pending -> ongoing -> passed | failed
                      pending|ongoing -> down -> ongoing | failed   (the breaker)
                      passed|failed -> ongoing     (the organizer re-sends: resend.py)
    WorkItem.state    pending -> leased -> done            (or back to pending)
                      done -> pending              (re-sent; the result kept as history)

Every change of these states (and of slot leases and live scores) is a named transition
of `gateway.runs.lifecycle` (runs, services, items, slots, live).
"""

from datetime import datetime
from enum import StrEnum
from typing import Any, cast

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
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.datasets.models import Dataset, DatasetImage
from gateway.db import Base, utcnow
from gateway.registry.models import Instance, Provider, Service


class RunState(StrEnum):
    QUEUED = "queued"  # waiting for a worker, or for its `start_at`
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"  # by the organizer; resumable
    FAILED = "failed"  # the hub could not go on (an image file gone); resumable


class Phase(StrEnum):
    DRYRUN = "dryrun"
    EVALUATION = "evaluation"


class ServiceStatus(StrEnum):
    """A run service's status as stored (the API also shows `cancelled`: progress.py)."""

    PENDING = "pending"
    ONGOING = "ongoing"
    DOWN = "down"  # paused by the dead-service breaker (SPEC §9): nothing claimed or sent
    PASSED = "passed"
    FAILED = "failed"


class Part(StrEnum):
    """The part of a split run's images an image belongs to (gateway.scoring.split)."""

    PUBLIC = "public"
    PRIVATE = "private"


class ItemState(StrEnum):
    PENDING = "pending"
    LEASED = "leased"  # claimed by a worker (`lease_owner`) until `lease_expires_at`
    DONE = "done"  # recorded, exactly once


# Runs that workers start or send.
ACTIVE_RUN_STATES = frozenset({RunState.QUEUED, RunState.RUNNING})
# Runs stopped before completing, which `resume_run` continues.
STOPPED_RUN_STATES = frozenset({RunState.CANCELLED, RunState.FAILED})
# Run services with items to claim.
OPEN_STATUSES = frozenset({ServiceStatus.PENDING, ServiceStatus.ONGOING})
# Run services judged and scored: nothing of them changes any more.
FINAL_STATUSES = frozenset({ServiceStatus.PASSED, ServiceStatus.FAILED})
# Work items without a result yet.
UNRECORDED_STATES = frozenset({ItemState.PENDING, ItemState.LEASED})


class Run(Base):
    __tablename__ = "runs"
    # The quota of team-started dry runs counts a provider's runs of the last 24 hours.
    __table_args__ = (Index("ix_runs_started_by", "started_by_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    phase: Mapped[str] = mapped_column(String(20))  # Phase
    metric: Mapped[str] = mapped_column(String(30), default="top5")
    state: Mapped[str] = mapped_column(String(20), default=RunState.QUEUED, index=True)
    seed: Mapped[int] = mapped_column(BigInteger)
    timeout_s: Mapped[float] = mapped_column(Float)
    max_attempts: Mapped[int] = mapped_column(Integer)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    # The provider (providers.id) that started this dry run itself; None: the organizer.
    # No foreign key, so migration 0003 adds it in place on SQLite; providers are never
    # deleted.
    started_by_id: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    # The worst p99 lateness of the sending workers' event loops (SPEC §8): how much of a
    # recorded latency may be the hub's own delay. None until the run has sent.
    timing_uncertainty_ms: Mapped[float | None] = mapped_column(Float)
    # The evaluation window (SPEC §3): queued until `start_at`; at `deadline` what is not
    # recorded becomes `missed` and the run completes, `stopped_at_deadline` then set.
    start_at: Mapped[datetime | None] = mapped_column(DateTime)
    deadline: Mapped[datetime | None] = mapped_column(DateTime)
    stopped_at_deadline: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # A split of the images into a public and a private part (a challenge phase's,
    # gateway.scoring.split): both None for a run that is not split.
    public_fraction: Mapped[float | None] = mapped_column(Float)
    split_seed: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class RunService(Base):
    """A service taking part in a run, with its status and, once done, its scores."""

    __tablename__ = "run_services"
    __table_args__ = (UniqueConstraint("run_id", "service_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    position: Mapped[int] = mapped_column(Integer)
    max_concurrency: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=ServiceStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(Text)
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Images the organizer had sent again (`gateway.runs.resend`); their earlier results
    # are `EarlierResult` rows. Also guards scoring: a lane scored before a re-send
    # cannot close the service with what it scored (`finish.finish_service`).
    resent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A split run's full rescore of each part: {"public": scores, "private": scores}.
    part_scores: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class WorkItem(Base):
    """One (run, service, image): sent until it has an outcome, recorded exactly once."""

    __tablename__ = "work_items"
    __table_args__ = (
        UniqueConstraint("run_service_id", "image_id"),
        Index("ix_work_items_claim", "run_service_id", "state", "seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    run_service_id: Mapped[int] = mapped_column(ForeignKey("run_services.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("dataset_images.id"))
    # Position in the run's seeded shuffled order, interleaved across services.
    seq: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(10), default=ItemState.PENDING)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    outcome: Mapped[str | None] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    queue_ms: Mapped[float | None] = mapped_column(Float)
    http_status: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(40))
    raw: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[list[Any]] | None] = mapped_column(JSON)  # [[tag, score], ...] ranked
    detail: Mapped[str | None] = mapped_column(Text)
    # Every attempt: [{"n", "instance", "outcome", "latency_ms", "status", "detail"}].
    attempt_log: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class EarlierResult(Base):
    """A work item's result before the organizer had it sent again
    (`gateway.runs.resend`): the history a re-send keeps."""

    __tablename__ = "earlier_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    run_service_id: Mapped[int] = mapped_column(
        ForeignKey("run_services.id", ondelete="CASCADE"), index=True
    )
    work_item_id: Mapped[int] = mapped_column(ForeignKey("work_items.id", ondelete="CASCADE"))
    outcome: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    http_status: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(40))
    raw: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)
    attempt_log: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    resent_at: Mapped[datetime] = mapped_column(DateTime)


class Worker(Base):
    """A dispatching process, alive while its heartbeat is fresh."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Where dial-out recognizers reach this process (SPEC §10); None when they cannot.
    public_url: Mapped[str | None] = mapped_column(Text, nullable=True)


class ServiceSlot(Base):
    """One unit of a run service's concurrency; a worker sends at most one request per slot
    it leases, so the per-service bound holds across all workers together."""

    __tablename__ = "service_slots"
    __table_args__ = (UniqueConstraint("run_service_id", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_service_id: Mapped[int] = mapped_column(
        ForeignKey("run_services.id", ondelete="CASCADE"), index=True
    )
    slot: Mapped[int] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)


class LiveTallyColumns:
    """The counters of a `gateway.scoring.live.LiveTally`, as columns (what each holds:
    gateway.scoring.live)."""

    images_total: Mapped[int] = mapped_column(Integer)
    images: Mapped[int] = mapped_column(Integer, default=0)
    outcomes: Mapped[dict[str, int]] = mapped_column(JSON)
    with_truth: Mapped[int] = mapped_column(Integer, default=0)
    true_pairs: Mapped[int] = mapped_column(Integer, default=0)
    top1: Mapped[int] = mapped_column(Integer, default=0)
    top5: Mapped[int] = mapped_column(Integer, default=0)
    latency_count: Mapped[int] = mapped_column(Integer, default=0)
    latency_sum: Mapped[float] = mapped_column(Float, default=0.0)
    latency_max: Mapped[float | None] = mapped_column(Float)
    latency_min: Mapped[float | None] = mapped_column(Float)
    # {bucket index: count} of the `ok` latencies, log buckets (gateway.scoring.live).
    latency_buckets: Mapped[dict[str, int]] = mapped_column(JSON)
    # The earliest answer (by finish time) and when its request was sent, and the latest
    # answer: throughput as `finish.elapsed_s` measures it.
    first_finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    first_sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class LiveScore(LiveTallyColumns, Base):
    """A run service's figures kept as counters while it runs (gateway.runs.live_scores,
    gateway.runs.results):
    written in the transaction that records its results, read by progress and leaderboard
    requests instead of its work items. What each column holds: gateway.scoring.live."""

    __tablename__ = "live_scores"

    run_service_id: Mapped[int] = mapped_column(
        ForeignKey("run_services.id", ondelete="CASCADE"), primary_key=True
    )
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)


class LiveScorePart(LiveTallyColumns, Base):
    """The live scores of one part (`public` or `private`) of a split run's images
    (`Run.public_fraction` below 1): written with `live_scores`, in the same transaction,
    so a challenge's leaderboard shows the public part while the phase is open and ranks
    on the private part at close without rescanning results."""

    __tablename__ = "live_score_parts"

    run_service_id: Mapped[int] = mapped_column(
        ForeignKey("run_services.id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[str] = mapped_column(String(10), primary_key=True)  # Part
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)


# Core tables, for the statements that bypass the ORM (the worker's, the read side's).
RUNS = cast(Table, Run.__table__)
RUN_SERVICES = cast(Table, RunService.__table__)
WORK_ITEMS = cast(Table, WorkItem.__table__)
SLOTS = cast(Table, ServiceSlot.__table__)
WORKERS = cast(Table, Worker.__table__)
LIVE_SCORES = cast(Table, LiveScore.__table__)
EARLIER_RESULTS = cast(Table, EarlierResult.__table__)
LIVE_SCORE_PARTS = cast(Table, LiveScorePart.__table__)
IMAGES = cast(Table, DatasetImage.__table__)
DATASETS = cast(Table, Dataset.__table__)
SERVICES = cast(Table, Service.__table__)
PROVIDERS = cast(Table, Provider.__table__)
INSTANCES = cast(Table, Instance.__table__)

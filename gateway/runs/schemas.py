"""API shapes of runs, their progress, leaderboards and results (SPEC §3).

These are wire formats, separate from the ORM tables in `gateway.runs.models`.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.wire import MAX_BIGINT, RowId, UtcDateTime

Phase = Literal["dryrun", "evaluation"]
Metric = Literal["top5", "top1", "coverage_at_95", "coverage_at_99", "micro_ap"]
ResultFormat = Literal["jsonl", "csv"]
# A run service's status; `down`: paused while its recognizer does not answer (SPEC §9).
ServiceStatus = Literal["pending", "ongoing", "down", "passed", "failed"]

# The columns of a results export, in order, for JSONL keys and the CSV header alike.
RESULT_COLUMNS: tuple[str, ...] = (
    "key",
    "outcome",
    "attempts",
    "latency_ms",
    "raw",
    "tags",
    "true_rank",
)


class RunCreate(BaseModel):
    """`POST /api/v1/runs`: what to run. Omitted settings take the hub's defaults."""

    model_config = ConfigDict(extra="forbid")

    dataset: RowId | str = Field(description="Dataset id or name.")
    phase: Phase
    services: list[str] | None = Field(
        default=None, description="Service GUIDs; all enabled services when omitted."
    )
    metric: Metric | None = None
    concurrency: int | None = Field(default=None, ge=1, le=1024)
    timeout_s: float | None = Field(default=None, gt=0, le=600)
    max_attempts: int | None = Field(default=None, ge=1, le=10)
    seed: int | None = Field(default=None, ge=-MAX_BIGINT - 1, le=MAX_BIGINT)


class PublishUpdate(BaseModel):
    """`POST /api/v1/runs/{id}/publish`: show (or hide) the leaderboard to providers."""

    model_config = ConfigDict(extra="forbid")

    published: bool = True


class LatencyRead(BaseModel):
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class RunServiceRead(BaseModel):
    """One service's progress within a run."""

    service_guid: str
    provider_guid: str
    service_name: str
    provider_name: str
    status: ServiceStatus
    reason: str | None
    done: int
    total: int
    outcomes: dict[str, int]
    images_per_s: float | None
    latency_ms: LatencyRead
    eta_s: float | None


class RunRead(BaseModel):
    """A run with per-service progress; a provider sees only its own service rows."""

    id: int
    dataset: str
    dataset_id: int
    phase: str
    metric: str
    state: str
    published: bool
    timeout_s: float
    max_attempts: int
    error: str | None
    started_by: str | None = Field(
        default=None, description="GUID of the provider that started this dry run; null: admin."
    )
    started_by_name: str | None = None
    services: list[RunServiceRead]
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None


class LeaderboardLatency(BaseModel):
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    mean: float | None = None


class LeaderboardRow(BaseModel):
    """One ranked row of a leaderboard, best first; metrics that do not apply are null."""

    model_config = ConfigDict(extra="allow")

    rank: int
    provider_guid: str
    provider_name: str
    service_guid: str
    service_name: str
    status: ServiceStatus
    images: int
    top1: float | None
    top5: float | None
    coverage_at_95: float | None
    coverage_at_99: float | None
    micro_ap: float | None
    latency_ms: LeaderboardLatency
    outcomes: dict[str, int]
    images_per_s: float | None


class ResultTag(BaseModel):
    tag: str
    score: float


class ResultRead(BaseModel):
    """One image's result for one service. Carries the rank of the true tag, never the
    true tags themselves."""

    key: str
    outcome: str | None
    attempts: int
    latency_ms: float | None
    raw: str | None
    tags: list[ResultTag]
    true_rank: int | None

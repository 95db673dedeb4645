"""API shapes of runs, their progress, leaderboards and results (SPEC §3).

These are wire formats, separate from the ORM tables in `gateway.runs.models`.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from gateway.errors import OUTCOMES
from gateway.wire import MAX_BIGINT, RowId, UtcDateTime

# The wire's names of the states in `gateway.runs.models` (Literal for OpenAPI; a test
# checks that they agree with the enums).
PhaseName = Literal["dryrun", "evaluation"]
Metric = Literal["top5", "top1", "coverage_at_95", "coverage_at_99", "micro_ap"]
ResultFormat = Literal["jsonl", "csv"]
# A run service's status as shown: `ServiceStatus`, or `cancelled`: its run was cancelled
# (or failed) before it was passed or failed.
ShownStatus = Literal["pending", "ongoing", "down", "passed", "failed", "cancelled"]

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
    phase: PhaseName
    services: list[str] | None = Field(
        default=None, description="Service GUIDs; all enabled services when omitted."
    )
    metric: Metric | None = None
    concurrency: int | None = Field(default=None, ge=1, le=1024)
    timeout_s: float | None = Field(default=None, gt=0, le=600)
    max_attempts: int | None = Field(default=None, ge=1, le=10)
    seed: int | None = Field(default=None, ge=-MAX_BIGINT - 1, le=MAX_BIGINT)
    start_at: UtcDateTime | None = Field(
        default=None, description="The run stays `queued` until then (ISO 8601 with offset)."
    )
    deadline: UtcDateTime | None = Field(
        default=None,
        description="In the future and after `start_at`: images not answered by then are "
        "recorded `missed` and the run completes.",
    )


class PublishUpdate(BaseModel):
    """`POST /api/v1/runs/{id}/publish`: show (or hide) the leaderboard to providers."""

    model_config = ConfigDict(extra="forbid")

    published: StrictBool = True


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
    status: ShownStatus
    reason: str | None
    done: int
    total: int
    outcomes: dict[str, int]
    images_per_s: float | None
    latency_ms: LatencyRead
    eta_s: float | None
    resent: int = Field(default=0, description="Images the organizer had sent again.")


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
    timing_uncertainty_ms: float | None = Field(
        default=None,
        description="How late the hub's event loop ran while sending (worst p99 of a "
        "second, ms): recorded latencies are exact to about this much.",
    )
    services: list[RunServiceRead]
    part: Literal["public"] | None = Field(
        default=None,
        description="`public`: the services' counts are of the public part of the images "
        "only (a team's view of a split challenge submission before the final ranking is "
        "published); null: of every image.",
    )
    start_at: UtcDateTime | None = Field(default=None, description="Queued until then.")
    deadline: UtcDateTime | None = None
    stopped_at_deadline: bool = Field(
        default=False,
        description="The deadline ended the run: what was not answered by then is `missed`.",
    )
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

    rank: int = Field(
        description="1-based; rows of equal `ranked_by` whose p50 latencies are within the "
        "run's timing uncertainty share a rank (1, 1, 3)."
    )
    ranked_by: str = Field(description="The run's primary metric, the field ranked on.")
    tie_breaker: Literal["latency_p50"] = Field(
        description="What orders rows of equal `ranked_by`: the lower p50 latency, only "
        "when the p50s differ by more than `timing_uncertainty_ms` (else a shared rank)."
    )
    provider_guid: str
    provider_name: str
    service_guid: str
    service_name: str
    status: ShownStatus
    provisional: bool = Field(
        description="True until the service is passed or failed: live figures, coverage "
        "and µAP null; then the full rescore."
    )
    images: int = Field(description="Images scored so far.")
    images_total: int = Field(description="The service's images in the run.")
    top1: float | None
    top5: float | None
    coverage_at_95: float | None
    coverage_at_99: float | None
    micro_ap: float | None
    latency_ms: LeaderboardLatency
    outcomes: dict[str, int]
    images_per_s: float | None
    timing_uncertainty_ms: float | None = Field(
        default=None,
        description="The run's timing uncertainty (see RunRead), ms; null: not recorded, "
        "and latency breaks no tie.",
    )
    resent: int = Field(
        default=0,
        description="Images of this service the organizer had sent again "
        "(POST /runs/{id}/resend); their earlier results are kept as history.",
    )


class ResendCreate(BaseModel):
    """`POST /api/v1/runs/{id}/resend`: which service's items to send again, by outcome."""

    model_config = ConfigDict(extra="forbid")

    service_guid: str = Field(max_length=64, description="The service whose items to re-send.")
    outcomes: list[Annotated[str, Field(max_length=40)]] = Field(
        min_length=1,
        max_length=len(OUTCOMES),
        description="Outcomes whose items are sent again, e.g. connect_error, missed, "
        "unreachable (any outcome but ok).",
    )


class ResendRead(BaseModel):
    """What a re-send did: the items now pending again, and the run's state."""

    run_id: int
    service_guid: str
    images: int = Field(description="Images sent again by this call.")
    outcomes: dict[str, int] = Field(description="Of those, how many had each outcome.")
    resent: int = Field(description="Images of the service re-sent in this run in all.")
    run_state: str


class EarlierResultRead(BaseModel):
    """An image's result before the organizer had it sent again (the history)."""

    key: str
    outcome: str
    attempts: int
    latency_ms: float | None
    http_status: int | None
    request_id: str | None
    detail: str | None
    finished_at: UtcDateTime | None
    resent_at: UtcDateTime


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


# A whole-run export (no `service`) adds these: the service first, and for the organizer
# what a team's own export never shows (the truth, the error text, the request's id and
# time).
RUN_RESULT_COLUMNS: tuple[str, ...] = (
    "service_guid",
    *RESULT_COLUMNS,
    "labels",
    "detail",
    "request_id",
    "finished_at",
)
# The leaderboard as CSV: nested figures flattened, one column per outcome.
LEADERBOARD_COLUMNS: tuple[str, ...] = (
    "rank",
    "ranked_by",
    "tie_breaker",
    "timing_uncertainty_ms",
    "provider_guid",
    "provider_name",
    "service_guid",
    "service_name",
    "status",
    "provisional",
    "images",
    "images_total",
    "top1",
    "top5",
    "coverage_at_95",
    "coverage_at_99",
    "micro_ap",
    *(f"latency_{p}_ms" for p in ("p50", "p90", "p99", "max", "mean")),
    *OUTCOMES,
    "images_per_s",
    "resent",
)
TIMELINE_COLUMNS: tuple[str, ...] = (
    "service_guid",
    "provider_name",
    "service_name",
    "start",
    "t_s",
    "done",
    "ok",
    *(o for o in OUTCOMES if o != "ok"),
    "images_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
)


class FailureGroupRead(BaseModel):
    """One kind of failure of one service in a run."""

    service_guid: str
    service_name: str
    provider_guid: str
    provider_name: str
    outcome: str
    http_status: int | None = Field(description="The HTTP status of `http_error` answers.")
    detail: str = Field(
        description="The error text with ids as `<id>` and numbers as `<n>`; "
        "`(other details)` gathers the kinds past the first 50 of a service."
    )
    example: str = Field(description="One such error as recorded.")
    count: int
    first_seen: UtcDateTime | None
    last_seen: UtcDateTime | None
    request_ids: list[str] = Field(description="Up to 5 request ids, earliest first.")


class WrongTag(BaseModel):
    tag: str
    count: int


class ClassRead(BaseModel):
    """One true label of the images a service answered in a run."""

    label: str
    images: int
    top1: int = Field(description="Images whose first tag is right.")
    top5: int = Field(description="Images with a right tag among the first five.")
    failed: int = Field(description="Images whose answer was not `ok`.")
    top1_accuracy: float
    top5_accuracy: float
    wrong_top1: list[WrongTag] = Field(
        description="The 3 most frequent wrong first tags, most frequent first."
    )


class TimelineLatency(BaseModel):
    p50: float | None
    p99: float | None


class TimelineBucket(BaseModel):
    start: UtcDateTime
    t_s: float = Field(description="Seconds from the run's start to the bucket's start.")
    done: int
    ok: int
    failures: dict[str, int] = Field(description="Answers not `ok`, by outcome.")
    images_per_s: float
    latency_ms: TimelineLatency


class TimelineDown(BaseModel):
    """An interval the service was `down` (paused by the breaker, SPEC §9)."""

    start: UtcDateTime
    t_s: float = Field(description="Seconds from the run's start to when it went down.")
    end: UtcDateTime | None = Field(
        description="When it answered again (or the run ended); null: down still."
    )
    end_t_s: float | None
    came_back: bool = Field(description="It answered its probe (false: still down, given up).")


class TimelineService(BaseModel):
    service_guid: str
    service_name: str
    provider_guid: str
    provider_name: str
    buckets: list[TimelineBucket]
    down: list[TimelineDown] = Field(
        default_factory=list, description="When the service was down, in time order."
    )


class TimelineRead(BaseModel):
    """A run over time, per service, in buckets of `bucket_s` seconds (empty ones left
    out)."""

    run_id: int
    bucket_s: float
    origin: UtcDateTime | None = Field(description="Where bucket 0 starts; null: no answer yet.")
    services: list[TimelineService]

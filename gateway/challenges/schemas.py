"""API shapes of challenges, phases, submissions and phase leaderboards (SPEC §12), apart
from the tables. The keys are those of `recoghub challenge apply`'s file: the file is
read into `ChallengeCreate` (gateway.cli.challenges).
"""

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, model_validator

from gateway.challenges.models import Challenge, ChallengePhase, Counts, PhaseKind, Visible
from gateway.scoring.leaderboard import PRIMARY_METRICS
from gateway.wire import MAX_BIGINT, Name, UtcDateTime

Slug = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$"),
]
PhaseName = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
]
Title = Name
Description = Annotated[str, StringConstraints(max_length=100_000)]
Limit = Annotated[int, Field(ge=1, le=100_000)]
Metric = Literal["top5", "top1", "coverage_at_95", "coverage_at_99", "micro_ap"]
# Provider GUIDs or names, or every provider.
Providers = (
    Literal["all"]
    | Annotated[list[Annotated[str, StringConstraints(max_length=200)]], Field(max_length=10_000)]
)
PhaseState = Literal["upcoming", "open", "closing", "closed", "published"]

assert set(Metric.__args__) == set(PRIMARY_METRICS)  # type: ignore[attr-defined]

_STRICT = ConfigDict(extra="forbid")


class SubmissionLimit(BaseModel):
    """How many submissions a team may make: in any 24 hours, any 7 days, in all."""

    model_config = _STRICT

    per_day: Limit | None = None
    per_week: Limit | None = None
    total: Limit | None = None


class PhaseCreate(BaseModel):
    """A phase as the organizer writes it (the API's body and the apply file's entry)."""

    model_config = _STRICT

    name: PhaseName
    dataset: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | int
    )
    kind: PhaseKind = PhaseKind.LIVE
    metric: Metric = "top5"
    opens_at: UtcDateTime
    closes_at: UtcDateTime
    submission_limit: SubmissionLimit = Field(default_factory=SubmissionLimit)
    counts: Counts = Counts.BEST
    selection_limit: Annotated[int, Field(ge=1, le=100)] = 1
    visible: Visible = Visible.LIVE
    public_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    # Fixes the split; chosen at random when the phase is created without one.
    seed: Annotated[int, Field(ge=0, le=MAX_BIGINT)] | None = None
    dry_run: StrictBool = False
    baselines: Annotated[list[str], Field(max_length=100)] = Field(default_factory=list)
    k: Annotated[int, Field(ge=1, le=1000)] | None = None

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.closes_at <= self.opens_at:
            raise ValueError(
                f"closes_at {self.closes_at.isoformat()} is not after opens_at "
                f"{self.opens_at.isoformat()}"
            )
        return self


class ChallengeCreate(BaseModel):
    model_config = _STRICT

    slug: Slug
    title: Title
    description: Description = ""
    public: StrictBool = False
    providers: Providers = "all"
    phases: Annotated[list[PhaseCreate], Field(max_length=50)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct_phases(self) -> Self:
        names = [phase.name for phase in self.phases]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"phase names must be distinct; repeated: {', '.join(repeated)}")
        return self


class ChallengeUpdate(BaseModel):
    """What PATCH changes; `phases`, when given, is the whole ordered list: phases named
    there are created or updated, phases left out are removed (refused once one has a
    submission)."""

    model_config = _STRICT

    title: Title | None = None
    description: Description | None = None
    public: StrictBool | None = None
    providers: Providers | None = None
    phases: Annotated[list[PhaseCreate], Field(max_length=50)] | None = None


class AllowanceRead(BaseModel):
    """The calling team's submissions to a phase: made, left, when the next is allowed."""

    made: int
    left: int | None = Field(description="Null: no limit.")
    next_allowed_at: UtcDateTime | None = Field(
        description="When none is left: when the next is allowed (null: not before the "
        "phase closes, or no time limit is used up)."
    )
    last_at: UtcDateTime | None


class PhaseRead(BaseModel):
    name: str
    position: int
    dataset: str
    kind: PhaseKind
    metric: str
    opens_at: UtcDateTime
    closes_at: UtcDateTime
    state: PhaseState
    submission_limit: SubmissionLimit
    counts: Counts
    selection_limit: int
    visible: Visible
    public_fraction: float
    seed: int | None = Field(None, description="The split's seed: the organizer's view only.")
    dry_run: bool
    baselines: list[str]
    k: int | None
    closed_at: UtcDateTime | None
    published_at: UtcDateTime | None
    yours: AllowanceRead | None = Field(
        None,
        description="The calling team's submissions made and left (null for the organizer "
        "and without a token).",
    )

    @classmethod
    def of(
        cls,
        phase: ChallengePhase,
        *,
        dataset: str,
        state: PhaseState,
        organizer: bool,
        yours: AllowanceRead | None = None,
    ) -> "PhaseRead":
        return cls(
            name=phase.name,
            position=phase.position,
            dataset=dataset,
            kind=PhaseKind(phase.kind),
            metric=phase.metric,
            opens_at=phase.opens_at,
            closes_at=phase.closes_at,
            state=state,
            submission_limit=SubmissionLimit(
                per_day=phase.per_day, per_week=phase.per_week, total=phase.total
            ),
            counts=Counts(phase.counts),
            selection_limit=phase.selection_limit,
            visible=Visible(phase.visible),
            public_fraction=phase.public_fraction,
            seed=phase.split_seed if organizer else None,
            dry_run=phase.dry_run,
            baselines=list(phase.baselines or ()),
            k=phase.k,
            closed_at=phase.closed_at,
            published_at=phase.published_at,
            yours=yours,
        )


class ChallengeRead(BaseModel):
    slug: str
    title: str
    description: str
    public: bool
    providers: Literal["all"] | list[str] | None = Field(
        description="`all`, or the enrolled providers' GUIDs (the organizer's view; null "
        "for others)."
    )
    enrolled: bool | None = Field(description="Whether the calling team is enrolled.")
    phases: list[PhaseRead]
    created_at: UtcDateTime

    @classmethod
    def of(
        cls,
        challenge: Challenge,
        *,
        phases: list[PhaseRead],
        providers: Literal["all"] | list[str] | None,
        enrolled: bool | None,
    ) -> "ChallengeRead":
        return cls(
            slug=challenge.slug,
            title=challenge.title,
            description=challenge.description,
            public=challenge.public,
            providers=providers,
            enrolled=enrolled,
            phases=phases,
            created_at=challenge.created_at,
        )


class ChallengeSummary(BaseModel):
    slug: str
    title: str
    public: bool
    phases: int


class SubmissionCreate(BaseModel):
    """A live submission: a run of one of the team's services (the organizer: of any
    enrolled service) over the phase's dataset."""

    model_config = _STRICT

    service_guid: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]


class Scores(BaseModel):
    """A submission's figures on one part of the phase's images (SPEC §6 fields)."""

    model_config = ConfigDict(extra="allow")

    part: Literal["public", "private", "all"]
    images: int
    top1: float | None = None
    top5: float | None = None
    coverage_at_95: float | None = None
    coverage_at_99: float | None = None
    micro_ap: float | None = None
    latency_ms: dict[str, float | None] = Field(default_factory=dict)
    outcomes: dict[str, int] = Field(default_factory=dict)
    images_per_s: float | None = None
    provisional: bool = Field(description="Live counters of a run still going (§6 notes).")


class ScoringProgress(BaseModel):
    stage: Literal["search", "score"] = Field(
        description="`search`: the descriptor queries searched for their nearest "
        "references; `score`: the images scored."
    )
    done: int
    total: int


class SubmissionRead(BaseModel):
    id: int
    challenge: str
    phase: str
    kind: Literal["live", "file"]
    provider_guid: str
    provider_name: str
    service_guid: str | None
    service_name: str | None
    run_id: int | None
    by_organizer: bool
    selected: bool
    created_at: UtcDateTime
    status: str | None = Field(description="The run service's status (SPEC §4).")
    images_done: int
    images_total: int
    scores: Scores | None = Field(
        description="Null while the phase's scores are hidden from the caller (visible: "
        "at_close before publication)."
    )
    format: str | None = Field(default=None, description="A file's format (SPEC §13).")
    state: Literal["scoring", "scored", "failed"] | None = Field(
        default=None,
        description="A file's scoring: `scoring` (accepted, it counts; follow it), "
        "`scored`, or `failed` (`error` says why). Null for a live run.",
    )
    size: int | None = Field(default=None, description="A file's size in bytes.")
    error: str | None = Field(default=None, description="Why a file's scoring failed.")
    progress: ScoringProgress | None = Field(
        default=None,
        description="How far a file still `scoring` is (updated a few times a second at "
        "most); null before its first stage and once it is scored or failed.",
    )


class PhaseLeaderboardRow(BaseModel):
    rank: int | None = Field(description="Null for a baseline and a team without a score.")
    baseline: bool
    provider_guid: str | None = Field(description="Null on the anonymous public page.")
    provider_name: str
    service_guid: str | None
    service_name: str | None
    submission_id: int | None
    submitted_at: UtcDateTime | None = Field(description="When the counting one was made.")
    submissions: int
    submissions_left: int | None = Field(description="Null: no limit.")
    last_submission_at: UtcDateTime | None
    scores: Scores | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> "PhaseLeaderboardRow":
        return cls.model_validate(row)


class PhaseLeaderboard(BaseModel):
    challenge: str
    phase: str
    state: PhaseState
    part: Literal["public", "private", "all"] = Field(
        description="Which images the scores are on: the public part while the phase "
        "is open, the private part in the final ranking (all when nothing is private)."
    )
    final: bool = Field(description="The frozen final ranking.")
    rows: list[PhaseLeaderboardRow]


class ChangeRead(BaseModel):
    what: str
    field: str
    old: Any
    new: Any


class ChallengeApplied(BaseModel):
    """What applying a challenge file did: nothing (`changes` empty) when applied before."""

    slug: str
    created: bool
    changes: list[ChangeRead]

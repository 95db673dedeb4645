"""Runs: create, look up, cancel, resume and publish; progress, leaderboards and results
(read from `gateway.runs.progress`). Every change of a run's state is
`gateway.runs.lifecycle`'s.

A run is created whole: one run service per service, one service slot per unit of each
service's concurrency and every work item up front, in a seeded shuffled order of the
dataset's images interleaved across services (`seq = position * n_services + service
position`), so every team gets the images in the same order at about the same time.
Workers do the sending (`gateway.runs.engine`, which nothing here imports).

Functions that change a run commit; look-ups leave the transaction to the caller.
"""

import random
from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gateway.config import Settings
from gateway.datasets.models import Dataset, DatasetImage
from gateway.db import utcnow
from gateway.errors import Conflict, InvalidInput, NotFound
from gateway.registry.models import Service
from gateway.registry.service import get_service
from gateway.runs import lifecycle
from gateway.runs.models import (
    Part,
    Phase,
    Run,
    RunService,
    RunState,
    ServiceStatus,
)
from gateway.runs.progress import (
    ResultRow,
    RunProgress,
    ServiceProgress,
    iter_results,
    iter_run_results,
    leaderboard,
    run_progress,
)
from gateway.scoring.leaderboard import DEFAULT_METRIC, PRIMARY_METRICS
from gateway.scoring.split import Split
from gateway.wire import MAX_ROW_ID, as_utc

__all__ = [
    "PHASES",
    "ResultRow",
    "RunProgress",
    "ServiceProgress",
    "create_run",
    "get_run",
    "cancel_run",
    "iter_results",
    "iter_run_results",
    "leaderboard",
    "list_runs",
    "resume_run",
    "run_progress",
    "set_published",
]

PHASES: tuple[str, ...] = tuple(Phase)
# Images whose work items are inserted per statement.


def create_run(
    session: Session,
    *,
    settings: Settings,
    dataset: int | str,
    phase: str,
    service_guids: list[str] | None = None,
    metric: str | None = None,
    concurrency: int | None = None,
    timeout_s: float | None = None,
    max_attempts: int | None = None,
    seed: int | None = None,
    started_by_id: int | None = None,
    start_at: datetime | None = None,
    deadline: datetime | None = None,
    split: Split | None = None,
    commit: bool = True,
) -> Run:
    """Queue a run of `dataset` (id or name) against `service_guids` (default: every
    enabled service); a worker starts it. Commits.

    Raises InvalidInput for an unknown phase or metric, a setting out of range, an empty
    dataset, a disabled service, a service with no endpoint or no service at all;
    NotFound (WrongGuidKind for a provider GUID) for an unknown dataset or service.
    `started_by_id` is the provider of a team-started dry run (`gateway.runs.team`).
    `start_at` and `deadline` (aware, or naive UTC) make its evaluation window: InvalidInput
    for a deadline not in the future or not after `start_at`. `split` divides its images
    into a public and a private part, each with live scores of its own (a challenge
    phase's, gateway.challenges). With `commit=False` the run is flushed, not committed:
    the caller commits it with what it wrote in the same transaction.
    """
    if phase not in PHASES:
        raise InvalidInput(f"unknown phase {phase!r}; expected one of: {', '.join(PHASES)}")
    metric = metric or DEFAULT_METRIC
    if metric not in PRIMARY_METRICS:
        raise InvalidInput(
            f"unknown metric {metric!r}; expected one of: {', '.join(PRIMARY_METRICS)}"
        )
    if concurrency is not None and concurrency < 1:
        raise InvalidInput(f"concurrency must be at least 1, got {concurrency}")
    if timeout_s is not None and not timeout_s > 0:
        raise InvalidInput(f"timeout_s must be positive, got {timeout_s}")
    if max_attempts is not None and not 1 <= max_attempts <= 10:
        raise InvalidInput(f"max_attempts must be within 1..10, got {max_attempts}")
    start_at, deadline = _window(start_at, deadline)
    found = find_dataset(session, dataset)
    services = _run_services(session, service_guids)
    image_ids = list(
        session.scalars(
            select(DatasetImage.id)
            .where(DatasetImage.dataset_id == found.id)
            .order_by(DatasetImage.position, DatasetImage.id)
        )
    )
    if not image_ids:
        raise InvalidInput(f"dataset {found.name!r} has no images")

    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    run = Run(
        dataset_id=found.id,
        phase=phase,
        metric=metric,
        state=RunState.QUEUED,
        seed=seed,
        timeout_s=timeout_s or settings.request_timeout_s,
        max_attempts=max_attempts or settings.max_attempts,
        published=False,
        started_by_id=started_by_id,
        start_at=start_at,
        deadline=deadline,
        stopped_at_deadline=False,
        public_fraction=split.public_fraction if split is not None else None,
        split_seed=split.seed if split is not None else None,
    )
    session.add(run)
    session.flush()
    members = [
        RunService(
            run_id=run.id,
            service_id=svc.id,
            position=position,
            max_concurrency=concurrency or svc.max_concurrency or settings.service_concurrency,
            status=ServiceStatus.PENDING,
        )
        for position, svc in enumerate(services)
    ]
    session.add_all(members)
    session.flush()
    lifecycle.slots.create(
        session.connection(), slots_of={m.id: m.max_concurrency for m in members}
    )
    _insert_work_items(session, run_id=run.id, members=members, image_ids=image_ids, seed=seed)
    lifecycle.live.create_rows(
        session.connection(), run_id=run.id, totals={m.id: len(image_ids) for m in members}
    )
    if split is not None:
        public = sum(1 for image_id in image_ids if split.is_public(image_id))
        lifecycle.live.create_part_rows(
            session.connection(),
            run_id=run.id,
            totals={
                (m.id, part): n
                for m in members
                for part, n in ((Part.PUBLIC, public), (Part.PRIVATE, len(image_ids) - public))
            },
        )
    if commit:
        session.commit()
    else:
        session.flush()
    return run


def _window(
    start_at: datetime | None, deadline: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The evaluation window as the database keeps it (naive UTC); raises InvalidInput for
    a deadline in the past or not after the start."""
    start = as_utc(start_at).replace(tzinfo=None) if start_at is not None else None
    end = as_utc(deadline).replace(tzinfo=None) if deadline is not None else None
    if end is not None:
        now = utcnow()
        if end <= now:
            raise InvalidInput(
                f"deadline {iso(end)} is not in the future (now {iso(now)}); "
                "give a later deadline, or none"
            )
        if start is not None and end <= start:
            raise InvalidInput(
                f"deadline {iso(end)} is not after start_at {iso(start)}; "
                "the run needs time between its start and its deadline"
            )
    return start, end


def iso(value: datetime) -> str:
    """A naive UTC time as the wire shows it, to the second."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _insert_work_items(
    session: Session, *, run_id: int, members: Sequence[RunService], image_ids: list[int], seed: int
) -> None:
    """Every (service, image) once, in the seeded order (`lifecycle.items.insert_pending`)."""
    random.Random(seed).shuffle(image_ids)
    n_services = len(members)
    connection = session.connection()

    def rows(member: RunService) -> Iterator[tuple[int, int, int, int]]:
        for position, image_id in enumerate(image_ids):
            yield (run_id, member.id, image_id, position * n_services + member.position)

    # Service by service, in seq order: the claim index then grows at its end.
    lifecycle.items.insert_pending(connection, services=(rows(member) for member in members))


def find_dataset(session: Session, dataset: int | str) -> Dataset:
    """The dataset named by id or name; raises NotFound."""
    found: Dataset | None = None
    if isinstance(dataset, int):
        found = session.get(Dataset, dataset)
    else:
        name = dataset.strip()
        found = session.scalar(select(Dataset).where(Dataset.name == name))
        # A name of ASCII digits may be an id ("¹" is a digit too, but no int).
        if found is None and name.isascii() and name.isdigit() and int(name) <= MAX_ROW_ID:
            found = session.get(Dataset, int(name))
    if found is None:
        raise NotFound(f"no dataset {dataset!r} (give a dataset id or name)")
    return found


def _run_services(session: Session, service_guids: list[str] | None) -> list[Service]:
    if service_guids is None:
        services = list(
            session.scalars(
                select(Service)
                .options(selectinload(Service.instances))
                .where(Service.enabled.is_(True))
                .order_by(Service.id)
            )
        )
        if not services:
            raise InvalidInput("no enabled service to run against; register or enable one")
    else:
        services = []
        seen: set[int] = set()
        for guid in service_guids:
            svc = get_service(session, guid=guid)
            if svc.id not in seen:
                seen.add(svc.id)
                services.append(svc)
        if not services:
            raise InvalidInput("no service given; name at least one, or omit the list")
        for svc in services:
            if not svc.enabled:
                raise InvalidInput(f"service {svc.guid} ({svc.name}) is disabled; enable it first")
    # A service without endpoints is run too: its recognizers connect out (SPEC §10).
    # None connected, its lane's breaker pauses it and gives its items up in the end.
    return services


def get_run(session: Session, *, run_id: int) -> Run:
    """The run `run_id`; raises NotFound."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    return run


def list_runs(session: Session) -> list[Run]:
    """Every run, newest first."""
    return list(session.scalars(select(Run).order_by(Run.id.desc())))


def cancel_run(session: Session, *, run_id: int) -> Run:
    """Stop a queued or running run (`lifecycle.cancel`). Commits.

    Raises NotFound, or Conflict for a run that is not queued or running.
    """
    run = get_run(session, run_id=run_id)
    lifecycle.cancel(run, now=utcnow())
    session.commit()
    return run


def resume_run(session: Session, *, run_id: int) -> Run:
    """Continue a cancelled or failed run where it stopped (`lifecycle.resume`): nothing
    recorded is sent again. Commits.

    Raises NotFound, or Conflict for a run that is queued, running or completed.
    """
    run = get_run(session, run_id=run_id)
    lifecycle.resume(run)
    session.commit()
    return run


def set_published(session: Session, *, run_id: int, published: bool) -> Run:
    """Show (or hide) the run's leaderboard to providers. Commits. Raises NotFound, and
    Conflict for a dry run: each team sees its own rows of a dry run's board already and
    never another team's, so publishing one would change nothing a team sees."""
    run = get_run(session, run_id=run_id)
    if run.phase == Phase.DRYRUN:
        raise Conflict(
            f"run {run_id} is a dry run: each team already sees its own row of its "
            "leaderboard, and never another team's; publishing changes nothing for teams "
            "(only evaluations are published)"
        )
    run.published = published
    session.commit()
    return run

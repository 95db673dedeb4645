"""Starting, cancelling, resuming and publishing runs through the service functions."""

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.errors import Conflict, InvalidInput, NotFound, WrongGuidKind
from gateway.registry.models import Service
from gateway.runs import service
from gateway.runs.models import RunService, ServiceSlot, WorkItem
from tests.runs.builders import add_dataset, add_service, make_images


@pytest.fixture
def world(run_engine: Engine, settings: Settings, data_dir: Path) -> dict[str, object]:
    dataset = add_dataset(run_engine, data_dir, make_images(5), name="dev")
    one = add_service(run_engine, ["http://127.0.0.1:9"], max_concurrency=2)
    two = add_service(run_engine, ["http://127.0.0.1:9"])
    return {"dataset": dataset, "one": one, "two": two}


def test_a_run_is_created_whole(
    run_engine: Engine, settings: Settings, world: dict[str, object]
) -> None:
    with Session(run_engine) as session:
        run = service.create_run(session, settings=settings, dataset="dev", phase="dryrun")
        assert (run.state, run.metric, run.timeout_s, run.max_attempts) == (
            "queued",
            "top5",
            settings.request_timeout_s,
            settings.max_attempts,
        )
        members = session.scalars(
            select(RunService).where(RunService.run_id == run.id).order_by(RunService.position)
        ).all()
        assert [m.max_concurrency for m in members] == [2, 4]
        assert [m.status for m in members] == ["pending", "pending"]
        slots = session.scalar(select(func.count()).select_from(ServiceSlot))
        items = session.scalar(select(func.count()).where(WorkItem.run_id == run.id))
        assert (slots, items) == (6, 10)
        assert [r.id for r in service.list_runs(session)] == [run.id]
        progress = service.run_progress(session, run_id=run.id)
        assert progress.dataset_name == "dev"
        assert [(s.done, s.total, s.status, s.eta_s) for s in progress.services] == [
            (0, 5, "pending", None),
            (0, 5, "pending", None),
        ]
        board = service.leaderboard(session, run_id=run.id)
        assert [row["images"] for row in board] == [0, 0]
        assert (
            list(service.iter_results(session, run_id=run.id, service_guid=str(world["one"]))) == []
        )

        other = service.create_run(
            session,
            settings=settings,
            dataset=world["dataset"],  # type: ignore[arg-type]
            phase="evaluation",
            service_guids=[str(world["two"]), str(world["two"])],
            metric="top1",
            concurrency=3,
            timeout_s=1.5,
            max_attempts=2,
            seed=42,
        )
        assert (other.metric, other.timeout_s, other.max_attempts, other.seed) == (
            "top1",
            1.5,
            2,
            42,
        )
        members = session.scalars(select(RunService).where(RunService.run_id == other.id)).all()
        assert [m.max_concurrency for m in members] == [3]
        with pytest.raises(NotFound, match="takes no part"):
            service.iter_results(session, run_id=other.id, service_guid=str(world["one"]))


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"phase": "final"}, InvalidInput, "unknown phase"),
        ({"metric": "accuracy"}, InvalidInput, "unknown metric"),
        ({"dataset": "nope"}, NotFound, "no dataset"),
        ({"service_guids": ["6d1f8a52-0000-4000-8000-000000000000"]}, NotFound, "no service"),
        ({"concurrency": 0}, InvalidInput, "concurrency"),
        ({"max_attempts": 11}, InvalidInput, "max_attempts"),
    ],
)
def test_bad_runs_are_refused(
    run_engine: Engine,
    settings: Settings,
    world: dict[str, object],
    options: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    arguments: dict[str, object] = {"dataset": "dev", "phase": "dryrun", **options}
    with Session(run_engine) as session, pytest.raises(error, match=message):
        service.create_run(session, settings=settings, **arguments)  # type: ignore[arg-type]


def test_services_must_be_enabled_and_reachable(
    run_engine: Engine, settings: Settings, world: dict[str, object]
) -> None:
    with Session(run_engine) as session:
        svc = session.scalars(select(Service).where(Service.guid == world["one"])).one()
        with pytest.raises(WrongGuidKind, match="provider GUID"):
            service.create_run(
                session,
                settings=settings,
                dataset="dev",
                phase="dryrun",
                service_guids=[svc.provider.guid],
            )
        svc.enabled = False
        session.commit()
        with pytest.raises(InvalidInput, match="disabled"):
            service.create_run(
                session,
                settings=settings,
                dataset="dev",
                phase="dryrun",
                service_guids=[svc.guid],
            )
        # Disabled services are left out by default.
        run = service.create_run(session, settings=settings, dataset="dev", phase="dryrun")
        assert (
            len(session.scalars(select(RunService).where(RunService.run_id == run.id)).all()) == 1
        )
        # A service with no endpoint is run: its recognizers connect out (SPEC §10).
        two = session.scalars(select(Service).where(Service.guid == world["two"])).one()
        two.instances.clear()
        session.commit()
        run = service.create_run(session, settings=settings, dataset="dev", phase="dryrun")
        services = session.scalars(select(RunService).where(RunService.run_id == run.id)).all()
        assert len(services) == 1


def test_cancel_resume_and_publish_follow_the_run_state(
    run_engine: Engine, settings: Settings, world: dict[str, object]
) -> None:
    with Session(run_engine) as session:
        run_id = service.create_run(session, settings=settings, dataset="dev", phase="dryrun").id
        with pytest.raises(Conflict, match="only a cancelled or failed run"):
            service.resume_run(session, run_id=run_id)
        assert service.cancel_run(session, run_id=run_id).state == "cancelled"
        with pytest.raises(Conflict, match="only a queued or running run"):
            service.cancel_run(session, run_id=run_id)
        # Never started: it goes back to the queue.
        assert service.resume_run(session, run_id=run_id).state == "queued"
        # A dry run is not published: each team sees its own row already (issue 20).
        with pytest.raises(Conflict, match="publishing changes nothing for teams"):
            service.set_published(session, run_id=run_id, published=True)
        evaluation = service.create_run(
            session, settings=settings, dataset="dev", phase="evaluation"
        ).id
        assert service.set_published(session, run_id=evaluation, published=True).published
        with pytest.raises(NotFound, match="no run 999"):
            service.get_run(session, run_id=999)
        with pytest.raises(NotFound):
            service.leaderboard(session, run_id=999)

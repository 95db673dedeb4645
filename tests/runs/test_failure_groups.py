"""Failure groups stay bounded: a recognizer that fails with a new text every time
cannot grow them past MAX_GROUPS kinds per service (the rest are one `(other details)`
group), and nothing is lost from the counts."""

import string
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.runs.failures import MAX_GROUPS, OTHER, failure_groups
from gateway.runs.models import WorkItem
from tests.runs.builders import add_dataset, add_service, make_images
from tests.runs.conftest import start_run


def word(i: int) -> str:
    """A distinct word of letters for each i (digits would be normalized away)."""
    letters = string.ascii_lowercase
    return letters[i // 26] + letters[i % 26]


def test_kinds_past_the_bound_share_one_group(
    run_engine: Engine, settings: Settings, data_dir: Path
) -> None:
    n = MAX_GROUPS + 10
    dataset_id = add_dataset(run_engine, data_dir, make_images(n))
    guid = add_service(run_engine, ["http://127.0.0.1:9"])
    run_id = start_run(
        run_engine, settings, dataset=dataset_id, phase="dryrun", service_guids=[guid]
    )
    start = datetime(2026, 1, 1)
    with Session(run_engine) as session:
        items = session.query(WorkItem).filter_by(run_id=run_id).order_by(WorkItem.seq).all()
        for i, item in enumerate(items):
            session.execute(
                update(WorkItem)
                .where(WorkItem.id == item.id)
                .values(
                    state="done",
                    outcome="bad_format",
                    attempts=1,
                    http_status=200,
                    detail=f"entry {i} '{word(i)}' is not a tag",
                    request_id=f"{i:032x}",
                    finished_at=start + timedelta(seconds=i),
                )
            )
        session.commit()
        groups = failure_groups(session, run_id=run_id)

    assert len(groups) == MAX_GROUPS + 1
    assert sum(g.count for g in groups) == n
    (other,) = [g for g in groups if g.detail == OTHER]
    assert groups[0] is other  # the most frequent first
    assert other.count == n - MAX_GROUPS and other.http_status is None
    assert other.first_seen == start + timedelta(seconds=MAX_GROUPS)
    assert other.last_seen == start + timedelta(seconds=n - 1)
    assert other.request_ids == [f"{i:032x}" for i in range(MAX_GROUPS, MAX_GROUPS + 5)]
    first = next(g for g in groups if g.detail == "entry <n> 'aa' is not a tag")
    assert (first.count, first.http_status, first.request_ids) == (1, 200, [f"{0:032x}"])
    assert first.example == "entry 0 'aa' is not a tag"

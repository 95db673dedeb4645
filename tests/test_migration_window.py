"""Migration 0006 (the evaluation window) goes down and up again on both databases,
keeping the runs that were there."""

from sqlalchemy import Engine, inspect, text

from gateway.db import make_engine
from gateway.migrate import current_revision, upgrade
from tests.test_migrations import downgrade, head_revision

WINDOW_COLUMNS = {"start_at", "deadline", "stopped_at_deadline"}


def run_columns(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {c["name"] for c in inspect(conn).get_columns("runs")}


def test_window_downgrade_and_back(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    assert WINDOW_COLUMNS <= run_columns(engine)
    downgrade(engine, "0005")
    assert not WINDOW_COLUMNS & run_columns(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO datasets (name, format, kind, images, labels, open_to_teams, "
                "created_at) VALUES ('d', 'folder', 'classification', 0, 0, false, "
                "CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO runs (dataset_id, phase, metric, state, seed, timeout_s, "
                "max_attempts, published, created_at) VALUES ((SELECT id FROM datasets), "
                "'evaluation', 'top5', 'completed', 1, 5, 3, false, CURRENT_TIMESTAMP)"
            )
        )
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        row = conn.execute(text("SELECT start_at, deadline, stopped_at_deadline FROM runs")).one()
    assert (row.start_at, row.deadline, bool(row.stopped_at_deadline)) == (None, None, False)
    engine.dispose()

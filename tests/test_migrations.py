"""`recoghub migrate` brings an empty or older database to the current schema."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, inspect, select, text
from typer.testing import CliRunner

from gateway.cli.main import app
from gateway.db import make_engine, make_session_factory
from gateway.migrate import MIGRATION_LOCK_KEY, current_revision, upgrade
from gateway.registry.models import Provider, Service
from tests.conftest import PostgresDatabases

FIRST = "0001"


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from gateway.migrate import alembic_config

    engine = make_engine("sqlite://")
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None
    return head


def test_upgrade_from_first_migration_keeps_registry_data(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine, FIRST)
    assert current_revision(engine) == FIRST
    assert "work_items" not in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO providers (guid, name, contact, api_key_hash, created_at) "
                "VALUES ('11111111-1111-4111-8111-111111111111', 'old team', 'a@b.c', "
                "'" + "a" * 64 + "', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO services (guid, provider_id, name, domain, protocol, enabled, "
                "max_concurrency, signing_secret, created_at) VALUES "
                "('22222222-2222-4222-8222-222222222222', "
                "(SELECT id FROM providers), 'old svc', 'dogs', 'v1', true, 6, 's3cret', "
                "CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO instances (service_id, position, url) VALUES "
                "((SELECT id FROM services), 0, 'http://127.0.0.1:9/')"
            )
        )

    upgrade(engine)

    assert current_revision(engine) == head_revision()
    assert {"runs", "work_items", "datasets"} <= set(inspect(engine).get_table_names())
    with make_session_factory(engine)() as session:
        provider = session.scalars(select(Provider)).one()
        service = session.scalars(select(Service)).one()
        assert (provider.name, provider.contact) == ("old team", "a@b.c")
        assert (service.name, service.max_concurrency, service.signing_secret) == (
            "old svc",
            6,
            "s3cret",
        )
        assert service.provider_id == provider.id
        assert service.endpoints == ["http://127.0.0.1:9/"]
        # 0004: the hub's own protocol got its SPEC §11 name; it has no options.
        assert (service.protocol, service.protocol_options) == ("recoghub-v1", None)
    engine.dispose()


def test_migrate_command_creates_schema_on_empty_database(database_url: str) -> None:
    from gateway.config import get_settings

    runner = CliRunner()
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["migrate"], env={"RECOGHUB_DATABASE_URL": database_url})
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert head_revision() in result.output
    engine = make_engine(database_url)
    assert current_revision(engine) == head_revision()
    again = runner.invoke(app, ["migrate"], env={"RECOGHUB_DATABASE_URL": database_url})
    get_settings.cache_clear()
    assert again.exit_code == 0, again.output
    engine.dispose()


def test_team_dryrun_columns_arrive_with_safe_defaults_and_go_back(database_url: str) -> None:
    """0003: existing datasets stay closed to teams, existing runs were the organizer's;
    its downgrade removes both columns."""
    from gateway.migrate import alembic_config

    engine = make_engine(database_url)
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO datasets (name, format, kind, images, labels, created_at) "
                "VALUES ('dev', 'folder', 'classification', 0, 0, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO runs (dataset_id, phase, metric, state, seed, timeout_s, "
                "max_attempts, published, created_at) VALUES ((SELECT id FROM datasets), "
                "'dryrun', 'top5', 'completed', 1, 10, 3, false, CURRENT_TIMESTAMP)"
            )
        )
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT open_to_teams FROM datasets")).scalar_one() in (0, False)
        assert conn.execute(text("SELECT started_by_id FROM runs")).scalar_one() is None

    from alembic import command

    with engine.begin() as conn:
        config = alembic_config(engine)
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")  # undo 0003 (and 0004, which follows it)
    assert "open_to_teams" not in {c["name"] for c in inspect(engine).get_columns("datasets")}
    assert "started_by_id" not in {c["name"] for c in inspect(engine).get_columns("runs")}
    engine.dispose()


def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from gateway.db import Base

    engine = make_engine(database_url)
    upgrade(engine)
    with engine.connect() as conn:
        # SQLite keeps whatever VARCHAR length a column was created with (0004 does not
        # copy the services table to widen `protocol`); it enforces none anyway.
        context = MigrationContext.configure(
            conn, opts={"compare_type": conn.dialect.name != "sqlite"}
        )
        drift = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert drift == []


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    from gateway.migrate import alembic_config

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_protocols_downgrade_and_back(database_url: str) -> None:
    """0004 (the head): down gives "v1" back and drops protocol_options."""
    engine = make_engine(database_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO providers (guid, name, api_key_hash, created_at) "
                "VALUES ('11111111-1111-4111-8111-111111111111', 't', '"
                + "b" * 64
                + "', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO services (guid, provider_id, name, protocol, enabled, "
                "max_concurrency, signing_secret, created_at) VALUES "
                "('22222222-2222-4222-8222-222222222222', (SELECT id FROM providers), 's', "
                "'recoghub-v1', true, 4, 's', CURRENT_TIMESTAMP)"
            )
        )
    downgrade(engine, "0003")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT protocol FROM services")).scalar_one() == "v1"
        assert "protocol_options" not in {c["name"] for c in inspect(conn).get_columns("services")}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


@pytest.mark.postgres
def test_concurrent_migrate_commands_on_postgres_take_turns(
    postgres: PostgresDatabases, tmp_path: Path
) -> None:
    """Every API replica migrates at start-up. Two `recoghub migrate` processes released
    at the same moment on an empty PostgreSQL database must both succeed: the second
    waits for the first and then finds nothing to do (without the lock, one of them
    fails on a table the other has just created)."""
    url = postgres.new(migrated=False)
    holder = make_engine(url)
    env = {**os.environ, "RECOGHUB_DATABASE_URL": url}
    logs = [tmp_path / f"migrate{i}.log" for i in range(2)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with holder.connect() as conn, conn.begin():
            # Another migrator holds the lock: both commands must queue behind it.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            for log in logs:
                with log.open("wb") as out:
                    procs.append(
                        subprocess.Popen(
                            [sys.executable, "-c", MIGRATE_COMMAND], env=env, stdout=out, stderr=out
                        )
                    )
            deadline = time.monotonic() + 60
            while waiting_on_advisory_lock(conn) < 2:
                exited = [p.returncode for p in procs if p.poll() is not None]
                assert not exited, f"a migrate exited early: {[p.read_text() for p in logs]}"
                assert time.monotonic() < deadline, "the migrations did not wait for the lock"
                time.sleep(0.05)
            assert "alembic_version" not in inspect(conn).get_table_names()
        codes = [p.wait(timeout=120) for p in procs]
        assert codes == [0, 0], [log.read_text() for log in logs]
        assert current_revision(holder) == head_revision()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        holder.dispose()


MIGRATE_COMMAND = (
    "import sys; sys.argv[1:] = ['migrate']; from gateway.cli.main import main; main()"
)


def waiting_on_advisory_lock(conn: Connection) -> int:
    return conn.execute(
        text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    ).scalar_one()


def test_challenges_downgrade_and_back(database_url: str) -> None:
    """0009: the challenge tables and the runs' split columns come and go, runs stay."""
    engine = make_engine(database_url)
    upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"challenges", "challenge_phases", "challenge_providers", "submissions"} <= tables
    assert "live_score_parts" in tables
    downgrade(engine, "0008")
    with engine.connect() as conn:
        assert "challenges" not in inspect(conn).get_table_names()
        assert "split_seed" not in {c["name"] for c in inspect(conn).get_columns("runs")}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()

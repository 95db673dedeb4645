"""`recoghub migrate` brings an empty or older database to the current schema."""

from sqlalchemy import Engine, inspect, select, text
from typer.testing import CliRunner

from gateway.cli.main import app
from gateway.db import make_engine, make_session_factory
from gateway.migrate import current_revision, upgrade
from gateway.registry.models import Provider, Service

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
        # 0003: the hub's own protocol got its SPEC §11 name; it has no options.
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
    """0004: existing datasets stay closed to teams, existing runs were the organizer's;
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
        command.downgrade(config, "0002")  # undo 0004 (and 0003, which follows it)
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
        # SQLite keeps whatever VARCHAR length a column was created with (0003 does not
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
    """0003 (the head, after 0004): down gives "v1" back and drops protocol_options."""
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
    downgrade(engine, "0004")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT protocol FROM services")).scalar_one() == "v1"
        assert "protocol_options" not in {c["name"] for c in inspect(conn).get_columns("services")}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()

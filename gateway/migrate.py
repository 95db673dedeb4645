"""Schema migrations with Alembic, run from code (`recoghub migrate`, tests, start-up)."""

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

HEAD = "head"
# Key of the PostgreSQL advisory lock that serialises migrations: every API replica
# migrates at start-up, and without the lock two of them racing on an empty database
# both try to create the same tables. Any fixed 64-bit number works.
MIGRATION_LOCK_KEY = int.from_bytes(b"recoghub", "big")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", "gateway:migrations")
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def _lock_migrations(connection: Connection) -> None:
    """Wait until no other process is migrating this PostgreSQL database. The lock is
    transaction-scoped: it is released when the upgrade commits or rolls back, so a
    migrator that dies cannot leave it held. SQLite takes none: one hub process serves a
    SQLite database (a second dispatching process is refused), so nothing races."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def upgrade(engine: Engine, revision: str = HEAD) -> None:
    """Bring the database behind `engine` to `revision` (the newest by default). Safe to
    call from several processes at once: on PostgreSQL they take turns, and each after
    the first finds the schema current and does nothing."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        _lock_migrations(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()

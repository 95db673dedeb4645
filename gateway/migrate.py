"""Schema migrations with Alembic, run from code (`recoghub migrate`, tests, start-up)."""

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

HEAD = "head"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", "gateway:migrations")
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def upgrade(engine: Engine, revision: str = HEAD) -> None:
    """Bring the database behind `engine` to `revision` (the newest by default)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()

"""Alembic environment: runs migrations on the connection or URL the caller gives."""

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

import gateway.challenges.models
import gateway.datasets.models
import gateway.notify.models
import gateway.registry.models
import gateway.runs.models  # noqa: F401  (every table must be known to autogenerate)
from gateway.db import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        _run(conn)

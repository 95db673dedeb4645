"""`recoghub worker`: a standalone dispatch worker."""

import logging

import typer
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from gateway.config import get_settings

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def register(app: typer.Typer) -> None:
    app.command()(worker)


def worker(
    log_level: str = typer.Option("info", help="Logging level (debug, info, warning, error)."),
) -> None:
    """Dispatch runs from the database (RECOGHUB_DATABASE_URL) until SIGTERM or Ctrl-C.

    Several workers may share one PostgreSQL database; SQLite allows one (the hub's
    embedded worker counts: start it with RECOGHUB_EMBEDDED_WORKER=false).
    """
    from gateway.runs.worker import WorkerRefused, run_worker_process

    level = log_level.upper()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(
            f"expected one of {', '.join(LOG_LEVELS).lower()}", param_hint="--log-level"
        )
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    settings = get_settings()
    try:
        run_worker_process(settings)
    except WorkerRefused as refused:
        typer.echo(f"recoghub worker: {refused}", err=True)
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        typer.echo(
            f"recoghub worker: database {where} failed: {first_line}; "
            "check RECOGHUB_DATABASE_URL and that the database is up",
            err=True,
        )
        raise typer.Exit(1) from None

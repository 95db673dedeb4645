"""`recoghub worker`: a standalone dispatch worker."""

import logging

import typer

from gateway.config import get_settings


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

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        run_worker_process(get_settings())
    except WorkerRefused as refused:
        typer.echo(f"recoghub worker: {refused}", err=True)
        raise typer.Exit(1) from None

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
    listen: str | None = typer.Option(
        None,
        help="Also accept dial-out recognizers (recoghub-recognizer --connect) on HOST:PORT; "
        "this port serves only GET /api/v1/connect.",
        show_default=False,
    ),
    public_url: str | None = typer.Option(
        None,
        help="With --listen: the URL recognizers reach this worker at, told to every "
        "recognizer connected to the hub (default RECOGHUB_PUBLIC_URL, or http://HOST:PORT).",
        show_default=False,
    ),
) -> None:
    """Dispatch runs from the database (RECOGHUB_DATABASE_URL) until SIGTERM or Ctrl-C.

    Several workers may share one PostgreSQL database; SQLite allows one (the hub's
    embedded worker counts: start it with RECOGHUB_EMBEDDED_WORKER=false). A worker sends
    to recognizers connected out only through its own connections: give each worker
    --listen (and --public-url) when teams connect out.
    """
    from gateway.dialout.listener import ListenError, bind, parse_listen, public_url_for
    from gateway.file_limit import FileLimitError, prepare_file_limit
    from gateway.runs.engine.process import WorkerRefused, run_worker_process
    from gateway.runs.engine.recorder import RecorderGone

    level = log_level.upper()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(
            f"expected one of {', '.join(LOG_LEVELS).lower()}", param_hint="--log-level"
        )
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    settings = get_settings()
    try:
        settings = prepare_file_limit(settings, listening=listen is not None)
    except FileLimitError as exc:
        typer.echo(f"recoghub worker: {exc}", err=True)
        raise typer.Exit(1) from None
    sock = None
    if listen is not None:
        try:
            host, port = parse_listen(listen)
            sock = bind(host, port)
            url = public_url_for(host, sock.getsockname()[1], public_url or settings.public_url)
        except ListenError as exc:
            if sock is not None:
                sock.close()
            typer.echo(f"recoghub worker: {exc}", err=True)
            raise typer.Exit(2) from None
        settings = settings.model_copy(update={"public_url": url})
        typer.echo(f"recoghub worker: accepting dial-out recognizers at {url}", err=True)
    try:
        run_worker_process(settings, listen=sock)
    except WorkerRefused as refused:
        typer.echo(f"recoghub worker: {refused}", err=True)
        raise typer.Exit(1) from None
    except RecorderGone as gone:
        typer.echo(
            f"recoghub worker: {gone}; the worker stopped: start it again (its unwritten "
            "results are sent again)",
            err=True,
        )
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

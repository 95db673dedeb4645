"""`recoghub serve | migrate`."""

import socket

import typer

from gateway.config import get_settings


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(migrate)


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    worker: bool | None = typer.Option(
        None,
        "--worker/--no-worker",
        help="Also dispatch runs in this process (default: RECOGHUB_EMBEDDED_WORKER, true).",
    ),
    access_log: bool = typer.Option(False, help="Log every HTTP request (costs the relay)."),
) -> None:
    """Run the hub: API, dashboard and, unless --no-worker, an embedded dispatch worker."""
    import uvicorn

    from gateway.app import create_app
    from gateway.dialout.frames import uvicorn_ws_options
    from gateway.file_limit import FileLimitError, prepare_file_limit
    from gateway.listening import listener_options

    settings = get_settings()
    if worker is not None:
        settings = settings.model_copy(update={"embedded_worker": worker})
    try:
        settings = prepare_file_limit(settings, listening=True)
    except FileLimitError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    # Bind before uvicorn does, so a port in use is one clear line, not uvicorn's log.
    try:
        listener = socket.create_server((host, port), family=_family(host))
    except OSError as exc:
        typer.echo(
            f"error: cannot listen on {host}:{port} ({exc.strerror}); "
            "stop what uses that port or choose another with --port",
            err=True,
        )
        raise typer.Exit(1) from None
    shown = f"[{host}]" if ":" in host else host
    bound = listener.getsockname()[1]
    typer.echo(
        f"RecogHub listening on http://{shown}:{bound} (dashboard at /, API at /api/v1)",
        err=True,
    )
    config = uvicorn.Config(
        create_app(settings),
        loop="uvloop",
        log_level="info",
        access_log=access_log,
        **uvicorn_ws_options(),
        **listener_options(settings),
    )
    uvicorn.Server(config).run(sockets=[listener])


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def migrate() -> None:
    """Bring the database (RECOGHUB_DATABASE_URL) to the current schema."""
    from gateway.db import make_engine
    from gateway.migrate import current_revision, upgrade

    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        typer.echo(f"database at revision {current_revision(engine)}")
    finally:
        engine.dispose()

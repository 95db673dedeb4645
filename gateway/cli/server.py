"""`recoghub serve | migrate`."""

import socket
from typing import TYPE_CHECKING, Any

import typer

from gateway.config import get_settings

if TYPE_CHECKING:
    import uvicorn


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(migrate)


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    worker: bool | None = typer.Option(
        None,
        "--worker/--no-worker",
        help="Also dispatch runs, in a worker process serve starts and stops itself "
        "(default: RECOGHUB_EMBEDDED_WORKER, true).",
    ),
    access_log: bool = typer.Option(False, help="Log every HTTP request (costs the relay)."),
) -> None:
    """Run the hub: API, dashboard and, unless --no-worker, a dispatch worker (a child
    process serve starts and stops itself)."""
    import uvicorn

    from gateway.app import create_app
    from gateway.dialout.frames import uvicorn_ws_options
    from gateway.file_limit import FileLimitError, prepare_file_limit
    from gateway.listening import listener_options
    from gateway.worker_child import WorkerChild

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
    # The dispatch worker runs in a child process of its own (gateway.worker_child).
    child = WorkerChild(settings) if settings.embedded_worker else None
    app = create_app(settings, worker_child=child)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        log_level="info",
        access_log=access_log,
        **uvicorn_ws_options(),
        **listener_options(settings, handover=child),
    )
    hub_server(config, app).run(sockets=[listener])


def hub_server(config: "uvicorn.Config", app: Any) -> "uvicorn.Server":
    """uvicorn's server, stopping the hub's dispatch worker first on SIGTERM or SIGINT:
    uvicorn closes every WebSocket before the app's shutdown, and a dial-out request
    cut by the hub's own shutdown must not count against its team (README, "The hub's
    own faults")."""
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            stop_dispatch = getattr(app.state, "stop_dispatch", None)
            if stop_dispatch is not None:
                await stop_dispatch()
            await super().shutdown(sockets)

    return Server(config)


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

"""`recoghub-recognizer`: serve the sample recognizer with one of its backends."""

import logging
import os
import socket
import sys
from enum import StrEnum
from typing import Annotated

import typer
import uvicorn

from sample_recognizer.app import create_recognizer_app
from sample_recognizer.config import DEFAULT_ANSWER, ConfigError, RecognizerConfig

# Plain help, not Rich panels: a panel cuts a long setting name at 80 columns
# ("RECOGHUB_RECOGNIZER_SECR…"); click wraps the text and keeps every name whole.
app = typer.Typer(
    add_completion=False, help="Serve a sample recognizer (protocol v1).", rich_markup_mode=None
)


class BackendName(StrEnum):
    dummy = "dummy"
    command = "command"
    python = "python"
    demo = "demo"


def _listen(host: str, port: int) -> socket.socket:
    # Bound here, not by uvicorn, so that port 0 works and the printed URL is the real one;
    # listening already, so a client that reads the URL is queued, not refused.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _log_to_stderr() -> None:
    # The answers it refuses, one line each (sample_recognizer/app.py); uvicorn's own
    # loggers stay at warning.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s recoghub-recognizer %(levelname)s %(message)s")
    )
    logger = logging.getLogger("sample_recognizer")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"recoghub-recognizer: error: {message}", err=True)
    return typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for all).")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free one).")
    ] = 8080,
    backend: Annotated[BackendName, typer.Option(help="What looks at the images.")] = (
        BackendName.dummy
    ),
    answer: Annotated[str, typer.Option(help="dummy: the answer to every image.")] = (
        DEFAULT_ANSWER
    ),
    command: Annotated[
        str | None,
        typer.Option(help='command: program run per image, e.g. "python my_model.py {image}".'),
    ] = None,
    command_timeout: Annotated[
        float, typer.Option(min=0.001, help="command: seconds allowed per image.")
    ] = 30.0,
    function: Annotated[
        str | None,
        typer.Option(help="python: module:function taking image bytes, e.g. my_model:recognize."),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            envvar="RECOGHUB_RECOGNIZER_SECRET",
            help="The service's signing secret from the hub; requests must then be signed.",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Images recognized at once; the others wait.")
    ] = 4,
    delay_ms: Annotated[
        float, typer.Option(min=0.0, help="Sleep before every answer (a slow team).")
    ] = 0.0,
    bad_rate: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Fraction of answers replaced by malformed ones."),
    ] = 0.0,
    error_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Fraction of requests answered with HTTP 500.")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the bad and error answers.")] = 0,
    connect: Annotated[
        str | None,
        typer.Option(
            "--connect",
            envvar="RECOGHUB_HUB",
            help="Connect out to this hub (behind a firewall: no port opened) and answer "
            "its requests over the connection; needs --service and --key.",
            show_default=False,
        ),
    ] = None,
    service: Annotated[
        str | None,
        typer.Option(help="--connect: the GUID of the service this recognizer serves."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            envvar="RECOGHUB_API_KEY",
            help="--connect: your provider API key.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve GET /ping and POST /recognize until interrupted, or with --connect (and
    --service) connect out to the hub and answer its requests over that connection."""
    # A team runs this next to its model module: make `--function my_model:f` importable.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        config = RecognizerConfig(
            backend=backend.value,
            secret=secret or None,
            max_concurrency=concurrency,
            answer=answer,
            command=command,
            function=function,
            command_timeout_s=command_timeout,
            delay_ms=delay_ms,
            bad_rate=bad_rate,
            error_status_rate=error_rate,
            seed=seed,
        )
        recognizer = create_recognizer_app(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if service is not None:
        # RECOGHUB_HUB alone (set for recoghub-cli) does not switch modes: --service does.
        _connect_out(connect, service, key, config)
        return
    if "--connect" in sys.argv:
        raise _fail("--connect needs --service GUID (the service this recognizer serves)")
    try:
        sock = _listen(host, port)
    except OSError as exc:
        raise _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", code=1) from None
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    signed = "signed requests only" if config.secret else "unsigned requests accepted"
    typer.echo(
        f"recoghub-recognizer ({config.backend} backend, {signed}) "
        f"serving on http://{shown_host}:{bound_port}"
    )
    _log_to_stderr()
    server = uvicorn.Server(
        uvicorn.Config(recognizer, loop="uvloop", http="httptools", log_level="warning")
    )
    server.run(sockets=[sock])


def _connect_out(hub: str | None, service: str, key: str | None, config: RecognizerConfig) -> None:
    import asyncio
    import signal

    import uvloop

    from sample_recognizer.app import Recognizer
    from sample_recognizer.backends import make_backend
    from sample_recognizer.dialout import DialoutClient, Refused

    if not hub:
        raise _fail("--service needs the hub: --connect HUB_URL (or RECOGHUB_HUB)")
    if not key:
        raise _fail("--connect needs your provider API key: --key (or RECOGHUB_API_KEY)")
    try:
        client = DialoutClient(
            hub=hub,
            service_guid=service,
            api_key=key,
            recognizer=Recognizer(config, make_backend(config)),
        )
    except (ValueError, ConfigError) as exc:
        raise _fail(str(exc)) from None
    signed = "signed requests only" if config.secret else "unsigned requests accepted"
    typer.echo(
        f"recoghub-recognizer ({config.backend} backend, {signed}) connecting out to "
        f"{client.seed_url} for service {service}"
    )
    _log_to_stderr()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await client.run(stop)

    try:
        uvloop.run(run())
    except Refused as refused:
        raise _fail(f"the hub refused the connection: {refused}", code=1) from None


def main() -> None:
    """Entry point of the `recoghub-recognizer` console script."""
    app()

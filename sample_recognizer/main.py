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

app = typer.Typer(add_completion=False, help="Serve a sample recognizer (protocol v1).")


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
) -> None:
    """Serve GET /ping and POST /recognize until interrupted."""
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


def main() -> None:
    """Entry point of the `recoghub-recognizer` console script."""
    app()

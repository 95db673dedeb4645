"""`recoghub`: the hub server and the organizer's commands."""

import typer
from pydantic import ValidationError

from gateway.cli import (
    challenges,
    datasets,
    demo,
    registry,
    run_resend,
    run_views,
    runs,
    server,
    service_state,
    worker,
)
from gateway.config import Settings

app = typer.Typer(
    name="recoghub",
    help="RecogHub: the hub server and the organizer's commands.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
server.register(app)
worker.register(app)
demo.register(app)
app.add_typer(registry.providers, name="provider")
service_state.register(registry.services)
app.add_typer(registry.services, name="service")
app.add_typer(datasets.app, name="dataset")
run_views.register(runs.app)
run_resend.register(runs.app)
app.add_typer(runs.app, name="run")
app.add_typer(challenges.app, name="challenge")


def main() -> None:
    try:
        app()
    except ValidationError as exc:
        # A bad RECOGHUB_* setting (or an unreadable *_FILE) is the operator's to fix:
        # one line each, naming the variable, instead of a traceback.
        if exc.title != Settings.__name__:
            raise
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            where = f"RECOGHUB_{field.upper()}: " if field else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            typer.echo(f"recoghub: invalid setting {where}{message}", err=True)
        raise SystemExit(2) from None

"""`recoghub`: the hub server and the organizer's commands."""

import typer

from gateway.cli import datasets, demo, registry, runs, server, worker

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
app.add_typer(registry.services, name="service")
app.add_typer(datasets.app, name="dataset")
app.add_typer(runs.app, name="run")


def main() -> None:
    app()

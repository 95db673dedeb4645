"""`recoghub worker` as the tests start it: `python -m tests.runs.worker_process`, the
command alone (as gateway.cli.worker registers it), configured by RECOGHUB_* variables."""

import typer

from gateway.cli.worker import register

app = typer.Typer()
register(app)

if __name__ == "__main__":
    app()

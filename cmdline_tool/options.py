"""What every `recoghub-cli` command shares: the hub, key and GUID options (also read
from `RECOGHUB_*` variables), `--json`, `run`, which turns any failure into one line
and the exit code, and `run_list`, a command that shows a list the hub sends."""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer
from rich.table import Table

from cmdline_tool import output
from cmdline_tool.errors import CliError
from cmdline_tool.hub_api import team_client

HubOpt = Annotated[
    str | None,
    typer.Option("--hub", envvar="RECOGHUB_HUB", help="Hub base URL, e.g. http://hub:8000."),
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--key", envvar="RECOGHUB_API_KEY", help="Your provider's API key."),
]
ServiceOpt = Annotated[
    str | None,
    typer.Option("--service", envvar="RECOGHUB_SERVICE", help="Your service's GUID."),
]
ProviderOpt = Annotated[
    str | None,
    typer.Option("--provider", envvar="RECOGHUB_PROVIDER", help="Your provider's GUID."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each hub answer.")
]


def run(as_json: bool, work: Callable[[], Coroutine[Any, Any, bool]]) -> None:
    """Run one command; exit 0 only if it reports success. Any error is one line."""
    try:
        succeeded = asyncio.run(work())
    except CliError as error:
        output.show_error(error, as_json=as_json)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        output.show_error(CliError("cli", "interrupted", "interrupted"), as_json=as_json)
        raise typer.Exit(130) from None
    except Exception as exc:  # a bug here must still be one line, not a traceback
        output.show_error(unexpected(exc), as_json=as_json)
        raise typer.Exit(1) from None
    if not succeeded:
        raise typer.Exit(1)


def unexpected(exc: BaseException) -> CliError:
    return CliError(
        "cli",
        "internal",
        f"recoghub-cli failed unexpectedly ({type(exc).__name__}: {exc})",
        "this is a bug in recoghub-cli; please report it with the command you ran",
    )


def run_list(
    hub: str | None,
    key: str | None,
    timeout: float,
    as_json: bool,
    *,
    path: str,
    name: str,
    empty: str,
    table: Callable[[list[dict[str, Any]]], Table],
) -> None:
    """GET the list at `path` with the team's key and show it (`output.print_list`)."""

    async def work() -> bool:
        async with team_client(hub, key, timeout) as client:
            body = await client.call("GET", path)
        output.print_list(body, name=name, as_json=as_json, empty=empty, table=table)
        return True

    run(as_json, work)

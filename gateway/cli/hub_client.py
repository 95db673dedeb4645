"""How organizer commands talk to a running hub: httpx, with errors as one clear line."""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console

err_console = Console(stderr=True)
console = Console()

HubOption = typer.Option(
    "http://127.0.0.1:8000", "--hub", envvar="RECOGHUB_HUB", help="Hub base URL."
)
JsonOption = typer.Option(False, "--json", help="Print JSON for machines.")
TokenOption = typer.Option(
    None, "--token", envvar="RECOGHUB_ADMIN_TOKEN", help="Organizer's admin token."
)


def print_json(data: Any) -> None:
    """JSON on stdout with plain echo, not rich: keys and secrets are never wrapped."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def fail(message: str, hint: str | None = None) -> NoReturn:
    """Print one clear line (and what to do) and exit 1."""
    err_console.print(
        f"[red]error:[/red] {message}" + (f"\n  hint: {hint}" if hint else ""), soft_wrap=True
    )
    raise typer.Exit(1)


@contextmanager
def hub_client(hub: str, token: str | None, timeout: float = 60.0) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=hub.rstrip("/"), headers=headers, timeout=timeout) as client:
        try:
            yield client
        except httpx.ConnectError:
            fail(f"cannot reach the hub at {hub}", "is `recoghub serve` running? check --hub")
        except httpx.TimeoutException:
            fail(f"the hub at {hub} did not answer in time")


def hub_answer(
    hub: str, token: str | None, method: str, path: str, *, as_json: bool, **request: Any
) -> Any:
    """Ask the hub (`method` `path`, httpx's `request` options) and return its answer;
    with --json, print it instead and return None: the command has nothing left to show.
    Fails like `checked`."""
    with hub_client(hub, token) as client:
        answer = checked(client.request(method, path, **request))
    if as_json:
        print_json(answer)
        return None
    return answer


def checked(response: httpx.Response) -> Any:
    """The JSON of a successful response; otherwise fail with the hub's detail."""
    if response.is_success:
        return response.json() if response.content else None
    try:
        body = response.json()
        detail, code = body.get("detail", response.text), body.get("code", "")
    except ValueError:
        detail, code = response.text, ""
    hint = None
    if response.status_code == 401:
        hint = "set RECOGHUB_ADMIN_TOKEN (or --token) to the organizer's admin token"
    fail(f"hub answered {response.status_code} {code}: {detail}", hint)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}


def caller_note(client: httpx.Client) -> str | None:
    """Who the token is, when it is not the organizer: a team's key in
    RECOGHUB_ADMIN_TOKEN sees only that team's share, and must not pass for the organizer.
    None for the organizer. Fails like `checked` when the hub refuses the token."""
    me = checked(client.get("/api/v1/whoami"))
    if me.get("role") == "organizer":
        return None
    provider = me.get("provider") or {}
    return (
        f"signed in as team {provider.get('name')!r} ({provider.get('guid')}), not the "
        "organizer: only that team's runs are shown; set RECOGHUB_ADMIN_TOKEN (or --token) "
        "to the admin token to see every run"
    )

"""`recoghub provider add|list` and `recoghub service add|list`: the organizer's registry."""

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from gateway.cli.hub_client import (
    HubOption,
    JsonOption,
    TokenOption,
    checked,
    console,
    hub_client,
    print_json,
)

providers = typer.Typer(help="Add and list providers (teams).", no_args_is_help=True)
services = typer.Typer(help="Add and list services.", no_args_is_help=True)


def _print_table(table: Table) -> None:
    # Piped output has no width to fit: keep GUIDs and URLs whole rather than folded at 80.
    (console if console.is_terminal else Console(width=200)).print(table)


def _print_fields(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        console.print(f"  {label.ljust(width)}  {value}", soft_wrap=True, highlight=False)


@providers.command("add")
def provider_add(
    name: str = typer.Argument(..., help="The team's name, as the leaderboard shows it."),
    contact: str | None = typer.Option(None, help="How to reach the team (e-mail, ...)."),
    guid: str | None = typer.Option(None, help="Choose the provider GUID (default: generated)."),
    as_json: bool = JsonOption,
    hub: str = HubOption,
    token: str | None = TokenOption,
) -> None:
    """Register a team and print its GUID and API key (shown only now)."""
    body: dict[str, Any] = {"name": name, "contact": contact}
    if guid:
        body["guid"] = guid
    with hub_client(hub, token) as client:
        provider = checked(client.post("/api/v1/providers", json=body))
    if as_json:
        print_json(provider)
        return
    console.print(f"Provider [bold]{provider['name']}[/bold] registered.", highlight=False)
    _print_fields([("GUID", provider["guid"]), ("API key", provider["api_key"])])
    console.print(
        "[yellow]The API key is shown only now[/yellow]: hand it to the team "
        "(RECOGHUB_API_KEY); the hub keeps only its hash."
    )


@providers.command("list")
def provider_list(
    as_json: bool = JsonOption, hub: str = HubOption, token: str | None = TokenOption
) -> None:
    """List the providers."""
    with hub_client(hub, token) as client:
        rows = checked(client.get("/api/v1/providers"))
    if as_json:
        print_json(rows)
        return
    table = Table("GUID", "Name", "Contact", "Services", title=f"{len(rows)} provider(s)")
    table.columns[0].no_wrap = True
    for p in rows:
        table.add_row(p["guid"], p["name"], p["contact"] or "", str(len(p["services"])))
    _print_table(table)


@services.command("add")
def service_add(
    provider: Annotated[str, typer.Option(help="The provider's GUID.")],
    name: Annotated[str, typer.Option(help="The service's name.")],
    endpoint: Annotated[
        list[str],
        typer.Option(help="Base URL (http:// or https://); repeat for more instances."),
    ],
    domain: str | None = typer.Option(None, help="What it recognizes, e.g. dog-breeds."),
    max_concurrency: int | None = typer.Option(
        None, "--max-concurrency", min=1, help="Requests in flight to it during a run."
    ),
    guid: str | None = typer.Option(None, help="Choose the service GUID (default: generated)."),
    as_json: bool = JsonOption,
    hub: str = HubOption,
    token: str | None = TokenOption,
) -> None:
    """Register a service of a provider and print its GUID and signing secret."""
    body: dict[str, Any] = {"provider_guid": provider, "name": name, "endpoints": endpoint}
    optional = {"domain": domain, "max_concurrency": max_concurrency, "guid": guid}
    body.update({k: v for k, v in optional.items() if v is not None})
    with hub_client(hub, token) as client:
        service = checked(client.post("/api/v1/services", json=body))
    if as_json:
        print_json(service)
        return
    console.print(
        f"Service [bold]{service['name']}[/bold] of {service['provider_name']} registered.",
        highlight=False,
    )
    _print_fields(
        [
            ("GUID", service["guid"]),
            ("signing secret", service["signing_secret"]),
            ("endpoints", ", ".join(service["endpoints"])),
        ]
    )
    console.print(
        "Give the signing secret to the team: its recognizer checks X-Recog-Signature with it."
    )


@services.command("list")
def service_list(
    provider: str | None = typer.Option(None, "--provider", help="Only this provider's."),
    as_json: bool = JsonOption,
    hub: str = HubOption,
    token: str | None = TokenOption,
) -> None:
    """List the services."""
    params = {"provider": provider} if provider else {}
    with hub_client(hub, token) as client:
        rows = checked(client.get("/api/v1/services", params=params))
    if as_json:
        print_json(rows)
        return
    table = Table(
        "GUID", "Provider", "Name", "Endpoints", "Enabled", "Max", title=f"{len(rows)} service(s)"
    )
    table.columns[0].no_wrap = True
    for s in rows:
        table.add_row(
            s["guid"],
            s["provider_name"],
            s["name"],
            "\n".join(s["endpoints"]),
            "yes" if s["enabled"] else "[red]no[/red]",
            str(s["max_concurrency"]),
        )
    _print_table(table)

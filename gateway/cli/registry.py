"""`recoghub provider add|list` and `recoghub service add|list|show|update`: the organizer's
registry."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway.cli import provider_notify
from gateway.cli.hub_client import (
    HubOption,
    JsonOption,
    TokenOption,
    checked,
    console,
    fail,
    hub_answer,
    hub_client,
)
from gateway.cli.service_view import connected_text, endpoints_text

providers = typer.Typer(help="Add and list providers (teams).", no_args_is_help=True)
services = typer.Typer(help="Add, list, show and change services.", no_args_is_help=True)

ProtocolOpt = Annotated[
    str | None,
    typer.Option(
        "--protocol",
        help="How the hub talks to it: recoghub-v1 (default), oip-v2 (KServe, Triton, "
        "MLServer) or torchserve.",
    ),
]
OptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        "-o",
        help="A protocol option as key=value (model, input, output, output_format, top_k, "
        "labels=a,b,c); repeat for more.",
    ),
]
LabelsFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--labels-file",
        exists=True,
        dir_okay=False,
        help="The option labels from a file, one class name a line (oip-v2 probabilities).",
    ),
]


def protocol_options(options: list[str] | None, labels_file: Path | None) -> dict[str, Any]:
    """`--option key=value ...` and `--labels-file` as the API's protocol_options."""
    parsed: dict[str, Any] = {}
    for option in options or []:
        key, equals, value = option.partition("=")
        key = key.strip()
        if not equals or not key:
            fail(f"--option {option!r} is not key=value", "e.g. --option model=resnet50")
        if key == "top_k":
            if not value.strip().isdigit():
                fail(f"--option top_k={value} is not a whole number")
            parsed[key] = int(value)
        elif key == "labels":
            parsed[key] = [label for label in value.split(",") if label.strip()]
        else:
            parsed[key] = value
    if labels_file is not None:
        lines = labels_file.read_text(encoding="utf-8").splitlines()
        parsed["labels"] = [line for line in lines if line.strip()]
    return parsed


def _protocol_shown(service: dict[str, Any]) -> str:
    options = service.get("protocol_options") or {}
    model = options.get("model")
    return str(service["protocol"]) + (f" ({model})" if model else "")


def _options_shown(options: dict[str, Any]) -> str:
    def shown(value: Any) -> str:
        if isinstance(value, list):
            head = ",".join(str(v) for v in value[:5])
            return f"{head},… ({len(value)})" if len(value) > 5 else head
        return str(value)

    return " ".join(f"{k}={shown(v)}" for k, v in options.items()) or "-"


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
    provider = hub_answer(hub, token, "POST", "/api/v1/providers", json=body, as_json=as_json)
    if provider is None:
        return  # printed as JSON
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
    rows = hub_answer(hub, token, "GET", "/api/v1/providers", as_json=as_json)
    if rows is None:
        return  # printed as JSON
    table = Table("GUID", "Name", "Contact", "Services", title=f"{len(rows)} provider(s)")
    table.columns[0].no_wrap = True
    for p in rows:
        table.add_row(p["guid"], p["name"], p["contact"] or "", str(len(p["services"])))
    _print_table(table)


@providers.command("rotate-key")
def provider_rotate_key(
    guid: str = typer.Argument(..., help="The provider's GUID."),
    as_json: bool = JsonOption,
    hub: str = HubOption,
    token: str | None = TokenOption,
) -> None:
    """Give a team a new API key (shown only now); its old key stops working at once."""
    provider = hub_answer(
        hub, token, "POST", f"/api/v1/providers/{guid}/rotate-key", as_json=as_json
    )
    if provider is None:
        return  # printed as JSON
    console.print(f"New API key of [bold]{provider['name']}[/bold]:", highlight=False)
    _print_fields([("GUID", provider["guid"]), ("API key", provider["api_key"])])
    console.print(
        "[yellow]The old key no longer works[/yellow]; this one is shown only now: hand it "
        "to the team (RECOGHUB_API_KEY)."
    )


@providers.command("delete")
def provider_delete(
    guid: str = typer.Argument(..., help="The provider's GUID."),
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    hub: str = HubOption,
    token: str | None = TokenOption,
) -> None:
    """Delete a team and its services; refused (409) once a run holds their results."""
    with hub_client(hub, token) as client:
        provider = checked(client.get(f"/api/v1/providers/{guid}"))
        services_n = len(provider["services"])
        question = f"delete provider {provider['name']} ({guid}) and its {services_n} service(s)?"
        if not yes and not typer.confirm(question):
            fail("not deleted", "pass --yes to delete without asking")
        checked(client.delete(f"/api/v1/providers/{guid}"))
    console.print(f"deleted provider {provider['name']} ({guid})", highlight=False, markup=False)


@services.command("add")
def service_add(
    provider: Annotated[str, typer.Option(help="The provider's GUID.")],
    name: Annotated[str, typer.Option(help="The service's name.")],
    endpoint: Annotated[
        list[str] | None,
        typer.Option(
            help="Base URL (http:// or https://); repeat for more instances; none for a "
            "service whose recognizers connect out (recoghub-recognizer --connect)."
        ),
    ] = None,
    domain: str | None = typer.Option(None, help="What it recognizes, e.g. dog-breeds."),
    max_concurrency: int | None = typer.Option(
        None, "--max-concurrency", min=1, help="Requests in flight to it during a run."
    ),
    guid: str | None = typer.Option(None, help="Choose the service GUID (default: generated)."),
    protocol: ProtocolOpt = None,
    option: OptionOpt = None,
    labels_file: LabelsFileOpt = None,
    as_json: bool = JsonOption,
    hub: str = HubOption,
    token: str | None = TokenOption,
) -> None:
    """Register a service of a provider and print its GUID and signing secret."""
    body: dict[str, Any] = {"provider_guid": provider, "name": name, "endpoints": endpoint or []}
    optional = {
        "domain": domain,
        "max_concurrency": max_concurrency,
        "guid": guid,
        "protocol": protocol,
        "protocol_options": protocol_options(option, labels_file) or None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    service = hub_answer(hub, token, "POST", "/api/v1/services", json=body, as_json=as_json)
    if service is None:
        return  # printed as JSON
    console.print(
        f"Service [bold]{service['name']}[/bold] of {service['provider_name']} registered.",
        highlight=False,
    )
    _print_fields(
        [
            ("GUID", service["guid"]),
            ("signing secret", service["signing_secret"]),
            ("endpoints", ", ".join(service["endpoints"])),
            ("protocol", _protocol_shown(service)),
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
    rows = hub_answer(hub, token, "GET", "/api/v1/services", params=params, as_json=as_json)
    if rows is None:
        return  # printed as JSON
    table = Table(
        "GUID",
        "Provider",
        "Name",
        "Endpoints",
        "Protocol",
        "Enabled",
        "Max",
        title=f"{len(rows)} service(s)",
    )
    table.columns[0].no_wrap = True
    for s in rows:
        table.add_row(
            s["guid"],
            s["provider_name"],
            s["name"],
            "\n".join(s["endpoints"]),
            _protocol_shown(s),
            "yes" if s["enabled"] else "[red]no[/red]",
            str(s["max_concurrency"]),
        )
    _print_table(table)


def _print_service(service: dict[str, Any]) -> None:
    _print_fields(
        [
            ("GUID", service["guid"]),
            ("provider", f"{service['provider_name']} ({service['provider_guid']})"),
            ("name", service["name"]),
            ("endpoints", endpoints_text(service)),
            *(("recognizers", c) for c in [connected_text(service)] if c is not None),
            ("domain", service["domain"] or "-"),
            ("protocol", service["protocol"]),
            # Labels are the team's text: never rich markup.
            ("options", escape(_options_shown(service["protocol_options"]))),
            ("enabled", "yes" if service["enabled"] else "no"),
            ("max concurrency", str(service["max_concurrency"])),
        ]
    )


@services.command("show")
def service_show(
    guid: str = typer.Argument(..., help="The service's GUID."),
    as_json: bool = JsonOption,
    hub: str = HubOption,
    token: str | None = TokenOption,
) -> None:
    """Show one service: endpoints, protocol and its options, limits."""
    service = hub_answer(hub, token, "GET", f"/api/v1/services/{guid}", as_json=as_json)
    if service is None:
        return  # printed as JSON
    _print_service(service)


@services.command("update")
def service_update(
    guid: str = typer.Argument(..., help="The service's GUID."),
    endpoint: Annotated[
        list[str] | None,
        typer.Option(help="Replace the endpoints; repeat for more instances."),
    ] = None,
    max_concurrency: int | None = typer.Option(
        None, "--max-concurrency", min=1, help="Requests in flight to it during a run."
    ),
    enabled: bool | None = typer.Option(None, "--enable/--disable", help="Take part in runs."),
    protocol: ProtocolOpt = None,
    option: OptionOpt = None,
    labels_file: LabelsFileOpt = None,
    clear_options: bool = typer.Option(
        False, "--clear-options", help="Drop every protocol option."
    ),
    as_json: bool = JsonOption,
    hub: str = HubOption,
    token: str | None = TokenOption,
) -> None:
    """Change a service. --option/--labels-file replace the protocol options whole."""
    body: dict[str, Any] = {}
    if endpoint:
        body["endpoints"] = endpoint
    if max_concurrency is not None:
        body["max_concurrency"] = max_concurrency
    if enabled is not None:
        body["enabled"] = enabled
    if protocol is not None:
        body["protocol"] = protocol
    options = protocol_options(option, labels_file)
    if options or clear_options:
        body["protocol_options"] = options
    if not body:
        fail("nothing to change", "give --protocol, --option, --endpoint, ... (see --help)")
    service = hub_answer(
        hub, token, "PATCH", f"/api/v1/services/{guid}", json=body, as_json=as_json
    )
    if service is None:
        return  # printed as JSON
    console.print(f"Service [bold]{service['name']}[/bold] changed.", highlight=False)
    _print_service(service)


# The organizer's side of a team's webhook: `recoghub provider notify|notify-test`.
provider_notify.register(providers)

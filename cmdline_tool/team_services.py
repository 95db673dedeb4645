"""A team's own services (SPEC §7): show them, re-point their endpoints, disable and
enable them, rotate the signing secret. Through the hub's API with the team's key."""

from typing import Annotated, Any

import typer
from rich.markup import escape

from cmdline_tool import output
from cmdline_tool.errors import CliError
from cmdline_tool.hub_api import HubClient, require_guid, team_client
from cmdline_tool.options import HubOpt, JsonOpt, KeyOpt, ServiceOpt, TimeoutOpt, run
from cmdline_tool.refusals import Subject
from gateway.cli.service_view import connected_text, endpoints_text

service_app = typer.Typer(
    help="Your own services: show, re-point, disable, enable, rotate the signing secret.",
    no_args_is_help=True,
)


async def _patch_service(client: HubClient, guid: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await client.call(
        "PATCH", f"/services/{guid}", Subject("service", guid, "--service"), json=body
    )
    return result


def _service_lines(s: dict[str, Any]) -> str:
    endpoints = escape(endpoints_text(s, separator="\n  "))
    state = "[green]enabled[/]" if s["enabled"] else "[yellow]disabled[/]"
    connected = connected_text(s)
    return (
        f"[bold]{escape(s['name'])}[/] {s['guid']} ({state}, provider "
        f"{escape(s['provider_name'])} {s['provider_guid']}, protocol {s['protocol']}, "
        f"max_concurrency {s['max_concurrency']})\nendpoints:\n  {endpoints}"
        + (f"\nrecognizers: {escape(connected)}" if connected else "")
    )


@service_app.command("show")
def service_show(
    service: ServiceOpt = None,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Show your service (all your services without --service / RECOGHUB_SERVICE)."""

    async def work() -> bool:
        async with team_client(hub, key, timeout) as client:
            if service:
                guid = require_guid(service, "--service", "RECOGHUB_SERVICE")
                found = [
                    await client.call(
                        "GET", f"/services/{guid}", Subject("service", guid, "--service")
                    )
                ]
            else:
                found = await client.call("GET", "/services")
        if as_json:
            output.emit_json({"services": found})
        elif not found:
            output.out.print("your team has no service yet; ask the organizer to register one")
        for s in [] if as_json else found:
            output.out.print(_service_lines(s))
        return True

    run(as_json, work)


def _service_change(
    service: str | None,
    hub: str | None,
    key: str | None,
    as_json: bool,
    timeout: float,
    body: dict[str, Any],
    done: str,
) -> None:
    async def work() -> bool:
        guid = require_guid(service, "--service", "RECOGHUB_SERVICE")
        async with team_client(hub, key, timeout) as client:
            changed = await _patch_service(client, guid, body)
        if as_json:
            output.emit_json(changed)
        else:
            output.out.print(done)
            output.out.print(_service_lines(changed))
            if changed.get("signing_secret"):
                output.out.print(f"new signing secret: {changed['signing_secret']}")
        return True

    run(as_json, work)


@service_app.command("set-endpoints")
def service_set_endpoints(
    endpoints: Annotated[
        list[str], typer.Argument(metavar="URL...", help="Every endpoint base URL, in full.")
    ],
    service: ServiceOpt = None,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Replace your service's endpoints (the hub sends to these from now on)."""
    _service_change(
        service, hub, key, as_json, timeout, {"endpoints": endpoints}, "endpoints replaced"
    )


@service_app.command("disable")
def service_disable(
    service: ServiceOpt = None,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Disable your service (e.g. while you redeploy): new runs leave it out."""
    _service_change(
        service, hub, key, as_json, timeout, {"enabled": False}, "disabled: new runs leave it out"
    )


@service_app.command("enable")
def service_enable(
    service: ServiceOpt = None,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Enable your service again."""
    _service_change(service, hub, key, as_json, timeout, {"enabled": True}, "enabled")


@service_app.command("rotate-secret")
def service_rotate_secret(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    service: ServiceOpt = None,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Issue a new signing secret, shown once: restart your recognizer with it."""
    if not yes and not typer.confirm(
        "the hub signs with the new secret at once; your recognizer refuses requests until "
        "restarted with it. Rotate?"
    ):
        output.error_line(CliError("local", "not_confirmed", "not rotated", "pass --yes"))
        raise typer.Exit(1)
    _service_change(
        service,
        hub,
        key,
        as_json,
        timeout,
        {"rotate_secret": True},
        "secret rotated: restart your recognizer with --secret <the new secret>",
    )

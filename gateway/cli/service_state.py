"""`recoghub service disable|enable|set-endpoints`: the organizer takes a team's service
out of new runs, brings it back, or points the hub at its new endpoints (the team's own
`recoghub-cli service ...` does the same for its own services)."""

from typing import Annotated, Any

import typer

from gateway.cli.hub_client import (
    HubOption,
    JsonOption,
    TokenOption,
    console,
    hub_answer,
)

ServiceGuid = Annotated[str, typer.Argument(help="The service's GUID.", show_default=False)]


def _change(
    guid: str, body: dict[str, Any], done: str, hub: str, token: str | None, as_json: bool
) -> None:
    service = hub_answer(
        hub, token, "PATCH", f"/api/v1/services/{guid}", json=body, as_json=as_json
    )
    if service is None:
        return  # printed as JSON
    console.print(
        f"service {service['guid']} ({service['provider_name']}/{service['name']}): {done}",
        highlight=False,
        soft_wrap=True,
    )


def register(services: typer.Typer) -> None:
    """Add the commands to the organizer's `recoghub service` group."""

    @services.command("disable")
    def service_disable(
        guid: ServiceGuid,
        as_json: bool = JsonOption,
        hub: str = HubOption,
        token: str | None = TokenOption,
    ) -> None:
        """Take a service out of new runs (runs under way keep it)."""
        _change(guid, {"enabled": False}, "disabled: new runs leave it out", hub, token, as_json)

    @services.command("enable")
    def service_enable(
        guid: ServiceGuid,
        as_json: bool = JsonOption,
        hub: str = HubOption,
        token: str | None = TokenOption,
    ) -> None:
        """Let a disabled service take part in new runs again."""
        _change(guid, {"enabled": True}, "enabled: new runs include it", hub, token, as_json)

    @services.command("set-endpoints")
    def service_set_endpoints(
        guid: ServiceGuid,
        endpoints: Annotated[
            list[str], typer.Argument(metavar="URL...", help="Every endpoint base URL, in full.")
        ],
        as_json: bool = JsonOption,
        hub: str = HubOption,
        token: str | None = TokenOption,
    ) -> None:
        """Replace a service's endpoints; the hub sends to these from now on, also in runs
        under way."""
        done = "endpoints now " + ", ".join(endpoints)
        _change(guid, {"endpoints": endpoints}, done, hub, token, as_json)

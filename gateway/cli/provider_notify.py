"""`recoghub provider notify|notify-test`: the organizer sets, clears or tries a team's
notification URL (the team's own `recoghub-cli notify ...` does the same for itself).
The organizer's own webhook is a setting, RECOGHUB_ORGANIZER_WEBHOOK_URL."""

from typing import Annotated

import typer

from gateway.cli.hub_client import (
    HubOption,
    JsonOption,
    TokenOption,
    checked,
    console,
    fail,
    hub_client,
    print_json,
)

ProviderGuid = Annotated[str, typer.Argument(help="The provider's GUID.", show_default=False)]


def register(providers: typer.Typer) -> None:
    """Add the commands to the organizer's `recoghub provider` group."""

    @providers.command("notify")
    def notify(
        guid: ProviderGuid,
        url: Annotated[
            str | None, typer.Argument(help="The team's webhook (http or https).")
        ] = None,
        clear: Annotated[bool, typer.Option("--clear", help="Stop its notifications.")] = False,
        as_json: bool = JsonOption,
        hub: str = HubOption,
        token: str | None = TokenOption,
    ) -> None:
        """Set where the hub posts a team's events (its secret is shown the first time)."""
        if (url is None) == (not clear):
            fail("give either a URL or --clear", "e.g. recoghub provider notify GUID https://...")
        with hub_client(hub, token) as client:
            provider = checked(
                client.patch(f"/api/v1/providers/{guid}", json={"notification_url": url})
            )
        if as_json:
            print_json(provider)
            return
        where = provider["notification_url"] or "nowhere (notifications stopped)"
        console.print(f"{provider['name']}'s events go to {where}", highlight=False)
        if provider.get("notification_secret"):
            console.print(
                f"notification secret (shown only now; hand it to the team): "
                f"{provider['notification_secret']}",
                highlight=False,
                soft_wrap=True,
            )

    @providers.command("notify-test")
    def notify_test(
        guid: ProviderGuid,
        as_json: bool = JsonOption,
        hub: str = HubOption,
        token: str | None = TokenOption,
    ) -> None:
        """Post a signed `test` event to the team's URL now and print how it answered."""
        with hub_client(hub, token) as client:
            answer = checked(client.post(f"/api/v1/providers/{guid}/notification-test"))
        if as_json:
            print_json(answer)
        elif answer["delivered"]:
            console.print(f"{answer['url']} answered {answer['status']}", highlight=False)
        else:
            fail(f"{answer['url']} did not take the test event: {answer['detail']}")
        if not answer["delivered"]:
            raise typer.Exit(1)
